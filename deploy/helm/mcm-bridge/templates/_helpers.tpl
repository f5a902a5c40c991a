{{/*
Names, labels, the config file and the pod template shared by the Deployment and the StatefulSet.
The config path, its mount and the Secret's mount are fixed: the image's CMD, the docs and
scripts/check-deploy.sh (mount = --config path) rely on them.
*/}}

{{- define "mcm-bridge.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* <release>-mcm-bridge, or <release> when it already contains the name. */}}
{{- define "mcm-bridge.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "mcm-bridge.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mcm-bridge.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: bridge
{{- end }}

{{- define "mcm-bridge.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "mcm-bridge.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/part-of: mcm-bridge
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "mcm-bridge.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "mcm-bridge.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "mcm-bridge.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* The config file's text: configFile verbatim, else `config:` as YAML; trailing blanks and
whitespace-only lines emptied, ending in one newline (as a block scalar holds it). The ConfigMap
holds exactly this text and the pod template its sha256. */}}
{{- define "mcm-bridge.configText" -}}
{{- $text := .Values.configFile | default (toYaml .Values.config) }}
{{- $text = regexReplaceAll "(?m)^[ \t]+$" $text "" }}
{{- printf "%s\n" (regexReplaceAll "\\s+\\z" $text "") }}
{{- end }}

{{/* The config as data, for the checks below (configFile parsed). */}}
{{- define "mcm-bridge.configData" -}}
{{- if .Values.configFile }}
{{- toJson (fromYaml .Values.configFile) }}
{{- else }}
{{- toJson (.Values.config | default dict) }}
{{- end }}
{{- end }}

{{/* A config duration in milliseconds ("250ms", "15s", "1m30s", or an integer of ms); empty when
it is none of these (the bridge then reports it). */}}
{{- define "mcm-bridge.durationMs" -}}
{{- $s := toString . | trim }}
{{- if regexMatch "^[0-9]+$" $s }}
{{- $s }}
{{- else if regexMatch "^([0-9]+(ms|s|m|h|d))+$" $s }}
{{- $unit := dict "ms" 1 "s" 1000 "m" 60000 "h" 3600000 "d" 86400000 }}
{{- $total := 0 }}
{{- range regexFindAll "[0-9]+(ms|s|m|h|d)" $s -1 }}
{{- $n := regexFind "^[0-9]+" . | atoi }}
{{- $total = add $total (mul $n (get $unit (regexReplaceAll "^[0-9]+" . ""))) }}
{{- end }}
{{- $total }}
{{- end }}
{{- end }}

{{/* The port of observe.listen (default 0.0.0.0:9464). */}}
{{- define "mcm-bridge.metricsPort" -}}
{{- $cfg := include "mcm-bridge.configData" . | fromJson }}
{{- $listen := toString (dig "observe" "listen" "0.0.0.0:9464" $cfg) }}
{{- $port := regexFind "[0-9]+$" $listen }}
{{- if not $port }}
{{- fail (printf "config observe.listen %q: expected host:port" $listen) }}
{{- end }}
{{- $port }}
{{- end }}

{{/* Refuses values that would deploy something broken; called by the ConfigMap template. */}}
{{- define "mcm-bridge.validate" -}}
{{- $cfg := include "mcm-bridge.configData" . | fromJson }}
{{- if hasKey $cfg "Error" }}
{{- fail (printf "configFile is not YAML: %s" $cfg.Error) }}
{{- end }}
{{- if not (has .Values.workload.kind (list "Deployment" "StatefulSet")) }}
{{- fail (printf "workload.kind %q: Deployment or StatefulSet" .Values.workload.kind) }}
{{- end }}
{{- if not .Values.mcm.existingSecret }}
{{- fail "mcm.existingSecret: required (the Secret with the MCM API key, created out of band: kubectl create secret generic mcm-bridge-api-key --from-file=api-key=./mcm-api-key)" }}
{{- end }}
{{- if not .Values.mcm.existingSecretKey }}
{{- fail "mcm.existingSecretKey: required (the key of mcm.existingSecret that holds the API key, e.g. api-key)" }}
{{- end }}
{{- $mcm := dig "mcm" dict $cfg }}
{{- if or (hasKey $mcm "api_key") (hasKey $mcm "api_key_file") }}
{{- fail "config mcm.api_key / mcm.api_key_file: leave them out; the chart reads the key from the Secret mcm.existingSecret (key mcm.existingSecretKey) through MCM_BRIDGE__MCM__API_KEY_FILE" }}
{{- end }}
{{- if hasKey (dig "kafka" dict $cfg) "group_instance_id" }}
{{- fail "config kafka.group_instance_id: one id shared by every pod fences all but one; use workload.kind: StatefulSet, which sets it from each pod's name" }}
{{- end }}
{{- range .Values.extraEnv }}
{{- if eq .name "MCM_BRIDGE__KAFKA__GROUP_INSTANCE_ID" }}
{{- fail "extraEnv MCM_BRIDGE__KAFKA__GROUP_INSTANCE_ID: use workload.kind: StatefulSet, which sets it from each pod's name" }}
{{- end }}
{{- end }}
{{- $drain := include "mcm-bridge.durationMs" (dig "delivery" "drain_timeout" "15s" $cfg) }}
{{- if and $drain (lt (mul (int .Values.terminationGracePeriodSeconds) 1000) (add (atoi $drain) 10000)) }}
{{- fail (printf "terminationGracePeriodSeconds %v must exceed config delivery.drain_timeout (%vms) by at least 10s (commit and consumer close after the drain)" .Values.terminationGracePeriodSeconds $drain) }}
{{- end }}
{{- end }}

{{/* The pod template of both workload kinds; `static` adds static group membership. */}}
{{- define "mcm-bridge.podTemplate" -}}
{{- $root := .root }}
{{- with $root }}
metadata:
  labels:
    {{- include "mcm-bridge.selectorLabels" . | nindent 4 }}
    {{- with .Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    # A changed config is a changed pod template: the pods roll one at a time.
    checksum/config: {{ include "mcm-bridge.configText" . | sha256sum }}
    {{- with .Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  # SIGTERM → stop consuming → drain (delivery.drain_timeout) → commit → close → exit 0.
  terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds }}
  automountServiceAccountToken: false
  {{- with include "mcm-bridge.serviceAccountName" . }}
  serviceAccountName: {{ . }}
  {{- end }}
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  {{- with .Values.podSecurityContext }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- if .Values.affinity }}
  affinity:
    {{- toYaml .Values.affinity | nindent 4 }}
  {{- else if .Values.spreadAcrossNodes }}
  affinity:
    podAntiAffinity:
      # Spread replicas over nodes so one node failure does not stop every consumer.
      preferredDuringSchedulingIgnoredDuringExecution:
        - weight: 100
          podAffinityTerm:
            topologyKey: kubernetes.io/hostname
            labelSelector:
              matchLabels:
                {{- include "mcm-bridge.selectorLabels" . | nindent 16 }}
  {{- end }}
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  containers:
    - name: mcm-bridge
      image: {{ include "mcm-bridge.image" . | quote }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      args: ["run", "--config", "/etc/mcm-bridge/mcm-bridge.yaml"]
      env:
        - name: POD_NAME
          valueFrom:
            fieldRef:
              fieldPath: metadata.name
        {{- if $.static }}
        # Static membership from the stable pod name: <fullname>-N always rejoins as itself.
        - name: MCM_BRIDGE__KAFKA__GROUP_INSTANCE_ID
          value: $(POD_NAME)
        {{- end }}
        # The client id names the pod in broker logs and group descriptions.
        - name: MCM_BRIDGE__KAFKA__CLIENT_ID
          value: $(POD_NAME)
        # The key, as a file of the Secret's mount: in no environment variable, no describe output.
        - name: MCM_BRIDGE__MCM__API_KEY_FILE
          value: /var/run/secrets/mcm-bridge/{{ .Values.mcm.existingSecretKey }}
        {{- with .Values.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      ports:
        - name: metrics
          containerPort: {{ include "mcm-bridge.metricsPort" . }}
          protocol: TCP
      startupProbe:
        httpGet:
          path: /healthz
          port: metrics
        periodSeconds: 2
        failureThreshold: 30
      # /healthz is 503 once the Kafka poll thread or the coordinator has been silent for longer
      # than drain + 5s + final commit + session timeout + 10s (80s with the default config).
      livenessProbe:
        httpGet:
          path: /healthz
          port: metrics
        periodSeconds: 10
        timeoutSeconds: 3
        failureThreshold: 3
      # Ready = joined the group and not stopped by its own configuration (key rejected, halt).
      # Idle pods and an open circuit stay ready (alerted instead).
      readinessProbe:
        httpGet:
          path: /readyz
          port: metrics
        periodSeconds: 10
        timeoutSeconds: 3
        failureThreshold: 3
      {{- with .Values.resources }}
      resources:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.securityContext }}
      securityContext:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      volumeMounts:
        - name: config
          mountPath: /etc/mcm-bridge
          readOnly: true
        - name: api-key
          mountPath: /var/run/secrets/mcm-bridge
          readOnly: true
        - name: tmp
          mountPath: /tmp
        {{- with .Values.extraVolumeMounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
  volumes:
    - name: config
      configMap:
        name: {{ include "mcm-bridge.fullname" . }}-config
    - name: api-key
      secret:
        secretName: {{ .Values.mcm.existingSecret }}
        defaultMode: 0440
    - name: tmp
      emptyDir:
        sizeLimit: 16Mi
    {{- with .Values.extraVolumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end }}
{{- end }}
