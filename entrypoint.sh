#!/bin/sh
# Container entrypoint. Without arguments it runs the daemon; with arguments it runs that
# recstore command (so scheduled one-shot tasks can use the same image):
#   docker run recstore                          -> recstore run
#   docker run recstore kaltura restore --apply  -> recstore kaltura restore --apply
# Secrets come from the environment or from *_FILE variables (see the README); nothing is
# baked into the image. exec hands PID 1 to recstore, so SIGTERM reaches the daemon directly.
set -eu
if [ "$#" -eq 0 ]; then
  set -- run
fi
exec recstore "$@"
