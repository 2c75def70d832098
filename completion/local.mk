# completion/: bash completion for `shoal`, installed as `shoal` where
# bash-completion loads it on demand (configure --with-bashcompletiondir).
# It asks `shoal __complete` (cli/cmd_complete.c; docs/completion.md).
bashcompletion_DATA = completion/shoal
EXTRA_DIST += completion/shoal.bash
CLEANFILES += completion/shoal
completion/shoal: $(top_srcdir)/completion/shoal.bash
	@mkdir -p completion
	$(AM_V_GEN)cp $(top_srcdir)/completion/shoal.bash $@
