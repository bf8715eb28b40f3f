#!/bin/sh
# Container entrypoint. Without arguments it runs the daemon; with arguments it runs that
# recstore command (so scheduled one-shot tasks can use the same image):
#   docker run recstore                          -> recstore run
#   docker run recstore kaltura restore --apply  -> recstore kaltura restore --apply
#
# RECSTORE_CONFIG_S3_URI=s3://bucket/prefix/ first copies the configuration files from S3
# into RECSTORE_CONFIG_DIR (default /tmp/recstore-config); RECSTORE_CONFIG then defaults to
# app.yaml there (`healthcheck`, the image's probe, reads what the daemon fetched and does not
# ask S3 every 30 s). Secrets come from the environment or from *_FILE variables (README);
# nothing is baked into the image. `exec` makes recstore PID 1, so SIGTERM reaches it.
set -eu
if [ -n "${RECSTORE_CONFIG_S3_URI:-}" ]; then
  dir="${RECSTORE_CONFIG_DIR:-/tmp/recstore-config}"
  if [ "${1:-}" != healthcheck ]; then
    recstore config fetch "$RECSTORE_CONFIG_S3_URI" --to "$dir" >&2
  fi
  export RECSTORE_CONFIG="${RECSTORE_CONFIG:-$dir/app.yaml}"
fi
if [ "$#" -eq 0 ]; then
  set -- run
fi
exec recstore "$@"
