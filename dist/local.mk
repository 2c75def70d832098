# dist/: systemd units that run the daemon as a service (docs/service.md).
# Made from their .in templates here rather than by configure, so
# ExecStart names $(bindir) fully expanded (configure would leave
# ${exec_prefix} in it), and always built, so tests can verify them.
DIST_UNITS = dist/shoal.service dist/user/shoal.service
noinst_DATA = $(DIST_UNITS)
EXTRA_DIST += dist/shoal.service.in dist/user/shoal.service.in dist/download-dir.conf.example
CLEANFILES += $(DIST_UNITS)
if SYSTEMD_SYSTEM_UNIT
systemdsystemunit_DATA = dist/shoal.service
endif
if SYSTEMD_USER_UNIT
systemduserunit_DATA = dist/user/shoal.service
endif

dist/shoal.service: $(top_srcdir)/dist/shoal.service.in Makefile
dist/user/shoal.service: $(top_srcdir)/dist/user/shoal.service.in Makefile
$(DIST_UNITS):
	@mkdir -p $(@D)
	$(AM_V_GEN)sed -e 's|@bindir[@]|$(bindir)|g' $(top_srcdir)/$@.in > $@.tmp && mv $@.tmp $@
