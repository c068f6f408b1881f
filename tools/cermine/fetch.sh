#!/usr/bin/env bash
# Download CERMINE 1.13 (the jar with its dependencies) into tools/cermine/ and check that it runs.
# Usage: tools/cermine/fetch.sh            (from anywhere; needs curl or wget, and java 8+ to check)
set -euo pipefail

VERSION=1.13
NAME="cermine-impl-${VERSION}-jar-with-dependencies.jar"
URL="https://maven.ceon.pl/artifactory/kdd-releases/pl/edu/icm/cermine/cermine-impl/${VERSION}/${NAME}"
DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
JAR="${DIR}/${NAME}"

if [[ -s "${JAR}" ]]; then
  echo "already there: ${JAR}"
else
  echo "downloading ${URL}"
  TMP="$(mktemp "${JAR}.XXXXXX.part")"
  trap 'rm -f "${TMP}"' EXIT
  if command -v curl >/dev/null 2>&1; then
    curl --fail --location --retry 3 --output "${TMP}" "${URL}"
  elif command -v wget >/dev/null 2>&1; then
    wget --tries=3 --output-document="${TMP}" "${URL}"
  else
    echo "error: neither curl nor wget is installed; download ${URL} by hand into ${DIR}/" >&2
    exit 1
  fi
  # A jar is a zip file: refuse an HTML error page saved under the jar's name.
  if [[ "$(head -c 2 "${TMP}")" != "PK" ]]; then
    echo "error: the download is not a jar (an error page?); try again later or fetch ${URL} by hand" >&2
    exit 1
  fi
  mv "${TMP}" "${JAR}"
  trap - EXIT
fi

if ! command -v java >/dev/null 2>&1; then
  echo "warning: java is not on PATH; install Java 8 or newer to run CERMINE (the jar is in place)" >&2
  exit 1
fi
# Without arguments ContentExtractor prints its usage and exits with status 1: that usage is the check.
if java -cp "${JAR}" pl.edu.icm.cermine.ContentExtractor 2>&1 | grep -q "Usage: ContentExtractor"; then
  echo "ok: CERMINE ${VERSION} runs ($(java -version 2>&1 | head -n 1))"
  echo "the extract stage now uses it with extract.engine: auto (or cermine)"
else
  echo "error: ${JAR} did not print CERMINE's usage; is it complete? delete it and run this script again" >&2
  exit 1
fi
