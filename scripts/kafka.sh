#!/usr/bin/env bash
# Apache Kafka on demand from its Maven Central jars (Java 17+ and Maven; no Docker).
#   scripts/kafka.sh start --dir /tmp/k [--brokers 3] [--sasl-ssl] ...   # prints a JSON line
#   scripts/kafka.sh stop|kill|restart|status --dir /tmp/k [--node N]
# See scripts/kafka.py for every option.
exec python3 "$(dirname "${BASH_SOURCE[0]}")/kafka.py" "$@"
