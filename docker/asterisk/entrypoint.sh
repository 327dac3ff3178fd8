#!/bin/sh
# The docker demo's Asterisk: docker-only settings over the shared asterisk-conf/, then Asterisk.
#
#   CC_EXTERNAL_IP  the address softphones reach this host at (e.g. 192.168.1.20), for phones on other
#                   machines: Asterisk then puts it in SIP headers and SDP instead of the container's
#                   address. Not needed for a softphone on the Docker host itself (Linux).
set -eu
nat=/etc/asterisk/docker/pjsip-nat.conf
: >"$nat"
if [ -n "${CC_EXTERNAL_IP:-}" ]; then
  case "$CC_EXTERNAL_IP" in
    *[!0-9A-Za-z.:-]*) echo "CC_EXTERNAL_IP must be an address or host name, not: $CC_EXTERNAL_IP" >&2; exit 2 ;;
  esac
  {
    echo "external_media_address = $CC_EXTERNAL_IP"
    echo "external_signaling_address = $CC_EXTERNAL_IP"
    echo "local_net = 127.0.0.0/8"
    echo "local_net = 172.16.0.0/12"
  } >>"$nat"
fi
exec "$@"
