/* progress.c: progress bar with rate and ETA for long operations. */
#include "config.h"

#include "cli/progress.h"

#include <string.h>
#include <unistd.h>

#include "common/util.h"

void progress_init(struct progress *p, FILE *out, const char *label)
{
	memset(p, 0, sizeof *p);
	p->out = out;
	p->tty = isatty(fileno(out));
	p->label = label;
	p->last_decile = -1;
}

static void format_eta(double seconds, char *out, size_t len)
{
	if (seconds < 0 || seconds > 99 * 3600) {
		snprintf(out, len, "--");
		return;
	}
	unsigned s = (unsigned)(seconds + 0.5);
	if (s >= 3600)
		snprintf(out, len, "%uh%02um", s / 3600, s % 3600 / 60);
	else if (s >= 60)
		snprintf(out, len, "%um%02us", s / 60, s % 60);
	else
		snprintf(out, len, "%us", s);
}

void progress_update(struct progress *p, uint64_t done, uint64_t total, double rate,
		     const char *extra)
{
	double frac = total ? (double)done / (double)total : 0.0;
	if (frac > 1.0)
		frac = 1.0;
	char d[24], t[24], r[24], eta[24];
	format_bytes(done, d, sizeof d);
	format_bytes(total, t, sizeof t);
	format_bytes((uint64_t)(rate > 0 ? rate : 0), r, sizeof r);
	format_eta(rate > 0 ? (double)(total - (done < total ? done : total)) / rate : -1, eta,
		   sizeof eta);
	if (p->tty) {
		char bar[31];
		int fill = (int)(frac * 30);
		for (int i = 0; i < 30; i++)
			bar[i] = i < fill ? '#' : '.';
		bar[30] = '\0';
		fprintf(p->out, "\r%s [%s] %5.1f%%  %s / %s  %s/s  ETA %s%s%s\033[K", p->label, bar,
			frac * 100, d, t, r, eta, extra ? "  " : "", extra ? extra : "");
		fflush(p->out);
		p->drawn = true;
		return;
	}
	int decile = (int)(frac * 10);
	if (decile == p->last_decile)
		return;
	p->last_decile = decile;
	fprintf(p->out, "%s %3d%%  %s / %s  %s/s%s%s\n", p->label, decile * 10, d, t, r,
		extra ? "  " : "", extra ? extra : "");
	fflush(p->out);
}

void progress_finish(struct progress *p)
{
	if (p->tty && p->drawn)
		fputc('\n', p->out);
	p->drawn = false;
}
