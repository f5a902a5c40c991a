#!/usr/bin/env bash
# apicurio.sh — a real Confluent-compatible schema registry for tests, built from
# Maven Central only: Apicurio Registry 2.4.2.Final, whose ccompat API
# (/apis/ccompat/v7) speaks the Confluent Schema Registry REST protocol, with
# in-memory (H2) storage and no auth.
#
# Why: Confluent's own registry is not published on Maven Central and no Docker
# engine runs here. Apicurio's `apicurio-registry-app` jar is a Quarkus module,
# not a runnable app, so we generate a small Maven project (the pom below) that
# unpacks it as its application root and runs the Quarkus Maven plugin's `build`
# goal, as Apicurio's own app module does, giving quarkus-app/quarkus-run.jar.
#
# Why 2.4.2.Final and not 3.x: on the Maven mirror reachable here, 3.3.3 (and
# 3.3.2, 3.0.9, 2.6.13.Final) miss modules the app needs (e.g.
# apicurio-registry-schema-util-provider, -contracts-rules, -config-index), or
# their parent pom. 2.4.2.Final resolves with two substitutions, both in the pom:
#   * org.everit.json.schema 1.14.2 comes from JitPack in Apicurio's poms; the
#     same library is on Central as com.github.erosb:everit-json-schema 1.14.2.
#   * apicurio-common-app-components-config-index-deployment 0.1.18.Final is not
#     served; the config-index extension is pinned to 0.1.10.Final (served with
#     its deployment jar). It only indexes dynamic-config properties.
# Quarkus 2.16.4.Final is the version Apicurio 2.4.2.Final's parent pom uses.
#
# Usage:
#   scripts/apicurio.sh build        build once into the cache dir (no-op if there)
#   scripts/apicurio.sh start PORT   build if needed, then run in the foreground
#                                    (exec java) on 127.0.0.1:PORT
# Ready when GET http://127.0.0.1:PORT/apis/ccompat/v7/subjects answers 200.
#
# Cache: ${XDG_CACHE_HOME:-$HOME/.cache}/mcm-bridge/apicurio-2.4.2.Final/
# The build runs in a temp dir beside it and is renamed into place only when
# complete, so a crashed build leaves nothing half-done.
# Env: APICURIO_JDBC_URL (default jdbc:h2:mem:registry_db; an H2 file URL such as
# jdbc:h2:file:/tmp/reg/db keeps the schemas across a restart, for outage tests),
# JAVA_HOME (Java 17+), APICURIO_JAVA_OPTS (extra JVM flags, default
# -Xmx512m), APICURIO_MVN_OPTS (extra mvn args, e.g. -Dmaven.repo.local=...),
# APICURIO_MVN_SETTINGS (settings.xml to use instead of the generated one that
# sends every repository declared in Apicurio's poms to Maven Central).
set -euo pipefail

APICURIO_VERSION=2.4.2.Final
QUARKUS_VERSION=2.16.4.Final
CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/mcm-bridge"
APP_DIR="$CACHE_ROOT/apicurio-$APICURIO_VERSION"
RUN_JAR="$APP_DIR/quarkus-app/quarkus-run.jar"

die() { echo "apicurio.sh: $*" >&2; exit 1; }

java_bin() {
  if [[ -n "${JAVA_HOME:-}" ]]; then echo "$JAVA_HOME/bin/java"; else echo java; fi
}

write_pom() {
  cat >"$1/pom.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0"
         xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
         xsi:schemaLocation="http://maven.apache.org/POM/4.0.0 http://maven.apache.org/xsd/maven-4.0.0.xsd">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.mcmbridge</groupId>
  <artifactId>apicurio-runner</artifactId>
  <version>1</version>
  <packaging>jar</packaging>
  <properties>
    <apicurio.version>$APICURIO_VERSION</apicurio.version>
    <quarkus.version>$QUARKUS_VERSION</quarkus.version>
    <project.build.sourceEncoding>UTF-8</project.build.sourceEncoding>
  </properties>
  <dependencyManagement>
    <dependencies>
      <!-- 0.1.18.Final's -deployment jar is not served; 0.1.10.Final is. -->
      <dependency>
        <groupId>io.apicurio</groupId>
        <artifactId>apicurio-common-app-components-config-index</artifactId>
        <version>0.1.10.Final</version>
      </dependency>
      <!-- Apicurio's parent pom as a BOM: its module versions + Quarkus BOM. -->
      <dependency>
        <groupId>io.apicurio</groupId>
        <artifactId>apicurio-registry</artifactId>
        <version>\${apicurio.version}</version>
        <type>pom</type>
        <scope>import</scope>
      </dependency>
    </dependencies>
  </dependencyManagement>
  <dependencies>
    <dependency>
      <groupId>io.apicurio</groupId>
      <artifactId>apicurio-registry-app</artifactId>
      <version>\${apicurio.version}</version>
      <exclusions>
        <!-- JitPack-only coordinates; replaced by the Central build below. -->
        <exclusion>
          <groupId>com.github.everit-org.json-schema</groupId>
          <artifactId>org.everit.json.schema</artifactId>
        </exclusion>
      </exclusions>
    </dependency>
    <dependency>
      <groupId>com.github.erosb</groupId>
      <artifactId>everit-json-schema</artifactId>
      <version>1.14.2</version>
    </dependency>
  </dependencies>
  <build>
    <plugins>
      <!-- The app jar becomes the application root (classes, web.xml,
           application.properties), as in Apicurio's own app module build. -->
      <plugin>
        <groupId>org.apache.maven.plugins</groupId>
        <artifactId>maven-dependency-plugin</artifactId>
        <version>3.6.1</version>
        <executions>
          <execution>
            <id>unpack-app</id>
            <phase>process-resources</phase>
            <goals><goal>unpack</goal></goals>
            <configuration>
              <artifactItems>
                <artifactItem>
                  <groupId>io.apicurio</groupId>
                  <artifactId>apicurio-registry-app</artifactId>
                  <version>\${apicurio.version}</version>
                  <outputDirectory>\${project.build.outputDirectory}</outputDirectory>
                </artifactItem>
              </artifactItems>
            </configuration>
          </execution>
        </executions>
      </plugin>
      <plugin>
        <groupId>io.quarkus</groupId>
        <artifactId>quarkus-maven-plugin</artifactId>
        <version>\${quarkus.version}</version>
        <executions>
          <execution>
            <goals><goal>build</goal></goals>
          </execution>
        </executions>
      </plugin>
    </plugins>
  </build>
</project>
EOF
}

write_settings() {
  cat >"$1/settings.xml" <<'EOF'
<settings>
  <mirrors>
    <!-- Apicurio's poms declare Confluent, JitPack and Eclipse repositories,
         none reachable here; everything needed is on Maven Central. -->
    <mirror>
      <id>central-only</id>
      <mirrorOf>*</mirrorOf>
      <url>https://repo.maven.apache.org/maven2</url>
    </mirror>
  </mirrors>
</settings>
EOF
}

build() {
  [[ -f "$RUN_JAR" ]] && return 0
  command -v mvn >/dev/null || die "mvn not found"
  mkdir -p "$CACHE_ROOT"
  local tmp
  tmp="$(mktemp -d "$CACHE_ROOT/.apicurio-$APICURIO_VERSION.build.XXXXXX")"
  MVN_PID=""
  # On any exit (error, Ctrl-C, TERM) stop maven and drop the temp dir.
  # shellcheck disable=SC2064
  trap "[[ -n \"\$MVN_PID\" ]] && kill \"\$MVN_PID\" 2>/dev/null; rm -rf '$tmp'" EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  write_pom "$tmp"
  local settings="${APICURIO_MVN_SETTINGS:-}"
  if [[ -z "$settings" ]]; then write_settings "$tmp"; settings="$tmp/settings.xml"; fi
  echo "apicurio.sh: building Apicurio Registry $APICURIO_VERSION in $tmp" >&2
  # %prod.quarkus.package.type: the app's application.properties asks for a
  # legacy-jar in the prod profile; we want the fast-jar (quarkus-run.jar).
  # removed-artifacts: the app jar is already unpacked as the application root.
  # shellcheck disable=SC2086
  mvn -B -q -f "$tmp/pom.xml" -s "$settings" ${APICURIO_MVN_OPTS:-} package \
      '-D%prod.quarkus.package.type=fast-jar' \
      -Dquarkus.class-loading.removed-artifacts=io.apicurio:apicurio-registry-app >&2 &
  MVN_PID=$!
  wait "$MVN_PID" || die "maven build failed (temp dir $tmp removed)"
  MVN_PID=""
  [[ -f "$tmp/target/quarkus-app/quarkus-run.jar" ]] || die "build produced no quarkus-run.jar"
  mkdir "$tmp/out"
  mv "$tmp/target/quarkus-app" "$tmp/out/quarkus-app"
  cp "$tmp/pom.xml" "$tmp/out/pom.xml"
  # Rename into place; if a concurrent build won the race, keep theirs.
  if ! mv -T "$tmp/out" "$APP_DIR" 2>/dev/null; then
    [[ -f "$RUN_JAR" ]] || die "could not move build into $APP_DIR"
  fi
  rm -rf "$tmp"
  trap - EXIT INT TERM
  echo "apicurio.sh: built $APP_DIR" >&2
}

start() {
  local port="${1:-}"
  [[ "$port" =~ ^[0-9]+$ ]] || die "usage: $0 start PORT"
  build
  # shellcheck disable=SC2086
  exec "$(java_bin)" ${APICURIO_JAVA_OPTS:--Xmx512m} \
    -Dquarkus.http.host=127.0.0.1 \
    -Dquarkus.http.port="$port" \
    -Dquarkus.datasource.jdbc.url="${APICURIO_JDBC_URL:-jdbc:h2:mem:registry_db}" \
    -Dregistry.auth.enabled=false \
    -jar "$RUN_JAR"
}

case "${1:-}" in
  build) build ;;
  start) shift; start "$@" ;;
  *) die "usage: $0 build | start PORT" ;;
esac
