#!/bin/sh
# Runs one pytest file for automake: TAP on stdout (from tap_plugin.py), pytest's own
# report on stderr, which the TAP driver keeps in the test's .log file.
here=$(cd "$(dirname "$0")" && pwd)
PYTHONPATH="$here/integration${PYTHONPATH:+:$PYTHONPATH}"
PYTHONDONTWRITEBYTECODE=1
export PYTHONPATH PYTHONDONTWRITEBYTECODE
exec 3>&1
exec "${PYTHON3:-/usr/bin/python3}" -m pytest -p tap_plugin -p no:cacheprovider -v -rs --tb=short "$1" 1>&2
