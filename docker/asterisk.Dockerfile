# The demo PBX for docker-compose.yml: Debian sid's Asterisk 22 (the packages scripts/pbx.sh puts in the
# test sandbox's chroot), configured from asterisk-conf/ (the same files the integration tests run),
# plus the app's dialplan routine and prompts. Docker-only settings (bind all interfaces, a published RTP
# range, an external address) come from docker/asterisk/*.conf, which the shared files #tryinclude.
# Asterisk runs as the unprivileged `asterisk` user of Debian's package (SIP 5060 and RTP are above 1024).
#
# The base image is pinned to an exact tag (Debian sid's slim image of 2026-02-02); Asterisk itself comes
# from Debian's archive at build time, as in the sandbox. `npm run test:compose` builds this file unchanged
# against a local stand-in of that tag (README, "Tests").
FROM debian:sid-20260202-slim

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      asterisk asterisk-modules asterisk-core-sounds-en-gsm asterisk-moh-opsound-gsm \
 && rm -rf /var/lib/apt/lists/*

# Only what we ship is loaded, as in the sandbox: Debian's sample configuration is kept aside.
RUN mv /etc/asterisk /etc/asterisk.debian && mkdir -p /etc/asterisk/docker
COPY asterisk-conf/*.conf /etc/asterisk/
COPY dialplan/considerate-callback.conf /etc/asterisk/
COPY docker/asterisk/*.conf /etc/asterisk/docker/

# Prompts: sounds/<lang>/ -> <astdatadir>/sounds/<lang>/ (Debian's sounds/en is a symlink: resolve it).
COPY sounds/ /tmp/cc-sounds/
RUN set -e; for dir in /tmp/cc-sounds/*/; do \
      lang="$(basename "$dir")"; target="$(readlink -m "/usr/share/asterisk/sounds/$lang")"; \
      mkdir -p "$target"; cp -r "$dir". "$target"/; \
    done; rm -rf /tmp/cc-sounds; chown -R asterisk:asterisk /etc/asterisk/docker \
 && chown -R asterisk:asterisk /var/lib/asterisk /var/spool/asterisk /var/log/asterisk /var/cache/asterisk \
 && mkdir -p /var/run/asterisk && chown asterisk:asterisk /var/run/asterisk

COPY docker/asterisk/entrypoint.sh /usr/local/bin/cc-asterisk-entrypoint

# SIP and the RTP range docker/asterisk/rtp.conf sets; ARI (8088) is for the compose network only.
EXPOSE 5060/udp 10000-10020/udp
# Shell form (CMD-SHELL): Docker and podman read it the same way.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s CMD asterisk -rx "core waitfullybooted" >/dev/null
USER asterisk
ENTRYPOINT ["cc-asterisk-entrypoint"]
CMD ["asterisk", "-f", "-C", "/etc/asterisk/asterisk.conf"]
