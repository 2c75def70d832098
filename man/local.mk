# man/: hand-written man(7) pages, installed into $(mandir)/man1 and man5
# (shoal-daemon.1 points to shoal(1), where the daemon's options are).
# tests/integration/test_manpages.py keeps them equal to `shoal help` and
# to the settings node/settings.c takes.
dist_man_MANS = man/shoal.1 man/shoal-daemon.1 man/shoal.conf.5
