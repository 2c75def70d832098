/* linkemu.c: an Ethernet switch with per-host one-way delay and loss, for bench/distribution --netns.
 *
 * This kernel has no netem (CONFIG_NET_SCH_NETEM unset), so the delay and
 * loss of the emulated links come from here; rate shaping stays with tc
 * (tbf/htb on each TAP inside its host's namespace: the host's uplink).
 *
 *   linkemu [--queue FRAMES] [--seed S] NAME:DELAY_MS:LOSS_PCT ...
 *
 * Opens one TAP per NAME (IFF_TAP | IFF_NO_PI) in the caller's namespace and
 * prints "READY <ports>" on stdout; the caller then moves each TAP into its
 * host's namespace (ip link set NAME netns HOST: the descriptor stays valid)
 * and configures it there.  From then on every frame a host sends (read from
 * its TAP) is held for that host's DELAY_MS, dropped with probability
 * LOSS_PCT / 100, and then switched: to the port its destination MAC was
 * learned on, or to every other port for broadcast, multicast and unknown
 * destinations.  So the one-way delay between hosts a and b is delay(a) on
 * the way there and delay(b) on the way back; loss likewise.
 *
 * Single-threaded: one ppoll() over the TAPs whose timeout is the next
 * frame's release time.  Each port has a bounded FIFO of --queue frames
 * (1024): a frame that finds it full is dropped (drop-tail) and counted.
 * SIGUSR1 prints one JSON line of counters; SIGTERM or SIGINT prints it once
 * more, frees everything, closes the TAPs (the kernel removes them) and
 * exits 0.  Exit 2 on bad usage, 1 if a TAP cannot be opened.
 *
 * Counters line: {"linkemu": "stats", "ports": [{"name", "rx_frames",
 * "rx_bytes", "lost", "queue_drops", "delivered", "write_errors"}, ...]}
 * where rx counts what the host sent, delivered what other ports received
 * from it.  Built on demand: make bench/linkemu. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define PORTS_MAX 128   /* hosts on one emulated switch */
#define FRAME_MAX 1536  /* MTU 1500 + Ethernet header + VLAN tag, rounded up */
#define QUEUE_DEFAULT 1024
#define QUEUE_MAX 65536
#define MACS_MAX 512    /* learned addresses; past that, unknown ones flood */
#define READ_BURST 64   /* frames read from one TAP per wake-up, for fairness */

struct slot {
	uint64_t due_ns;
	uint16_t len;
	uint8_t data[FRAME_MAX];
};

struct port {
	int fd;
	char name[IFNAMSIZ];
	uint64_t delay_ns;
	double loss;              /* probability, 0..1 */
	struct slot *ring;        /* owned; cap slots */
	size_t head, count, cap;
	uint64_t rx_frames, rx_bytes, lost, queue_drops, delivered, write_errors;
};

struct mac_entry {
	uint8_t mac[6];
	int port;
};

struct emu {
	struct port ports[PORTS_MAX];
	int nports;
	struct mac_entry macs[MACS_MAX];
	int nmacs;
	uint64_t rng;
};

static volatile sig_atomic_t stop_flag;
static volatile sig_atomic_t stats_flag;

static void on_stop(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static void on_stats(int sig)
{
	(void)sig;
	stats_flag = 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* xorshift64*: a uniform double in [0, 1). */
static double rng_next(struct emu *e)
{
	e->rng ^= e->rng >> 12;
	e->rng ^= e->rng << 25;
	e->rng ^= e->rng >> 27;
	return (double)((e->rng * 2685821657736338717ull) >> 11) * (1.0 / 9007199254740992.0);
}

static int tap_open(const char *name, char *err, size_t errlen)
{
	struct ifreq ifr;
	int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "/dev/net/tun: %s", strerror(errno));
		return -1;
	}
	memset(&ifr, 0, sizeof ifr);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", name);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		snprintf(err, errlen, "TUNSETIFF %s: %s", name, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* NAME:DELAY_MS:LOSS_PCT into p (fd and ring not touched). 0 or -EINVAL. */
static int parse_port(const char *arg, struct port *p)
{
	const char *c1 = strchr(arg, ':');
	const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
	char *end;
	double ms, pct;
	size_t nlen;

	if (!c1 || !c2)
		return -EINVAL;
	nlen = (size_t)(c1 - arg);
	if (nlen == 0 || nlen >= IFNAMSIZ)
		return -EINVAL;
	memcpy(p->name, arg, nlen);
	p->name[nlen] = '\0';
	errno = 0;
	ms = strtod(c1 + 1, &end);
	if (errno || end != c2 || ms < 0 || ms > 10000)
		return -EINVAL;
	pct = strtod(c2 + 1, &end);
	if (errno || *end != '\0' || c2[1] == '\0' || pct < 0 || pct > 100)
		return -EINVAL;
	p->delay_ns = (uint64_t)(ms * 1e6);
	p->loss = pct / 100.0;
	return 0;
}

static void print_stats(const struct emu *e)
{
	printf("{\"linkemu\": \"stats\", \"ports\": [");
	for (int i = 0; i < e->nports; i++) {
		const struct port *p = &e->ports[i];
		printf("%s{\"name\": \"%s\", \"rx_frames\": %" PRIu64 ", \"rx_bytes\": %" PRIu64
		       ", \"lost\": %" PRIu64 ", \"queue_drops\": %" PRIu64 ", \"delivered\": %" PRIu64
		       ", \"write_errors\": %" PRIu64 "}",
		       i ? ", " : "", p->name, p->rx_frames, p->rx_bytes, p->lost, p->queue_drops,
		       p->delivered, p->write_errors);
	}
	printf("]}\n");
	fflush(stdout);
}

static int mac_lookup(const struct emu *e, const uint8_t *mac)
{
	for (int i = 0; i < e->nmacs; i++)
		if (memcmp(e->macs[i].mac, mac, 6) == 0)
			return e->macs[i].port;
	return -1;
}

static void mac_learn(struct emu *e, const uint8_t *mac, int port)
{
	if (mac[0] & 1)
		return; /* a group address is never a source */
	for (int i = 0; i < e->nmacs; i++) {
		if (memcmp(e->macs[i].mac, mac, 6) == 0) {
			e->macs[i].port = port;
			return;
		}
	}
	if (e->nmacs < MACS_MAX) {
		memcpy(e->macs[e->nmacs].mac, mac, 6);
		e->macs[e->nmacs].port = port;
		e->nmacs++;
	}
}

static void deliver(struct emu *e, struct port *from, int to, const uint8_t *frame, size_t len)
{
	ssize_t w = write(e->ports[to].fd, frame, len);
	if (w == (ssize_t)len)
		from->delivered++;
	else
		from->write_errors++;
}

/* Frame from port `src` is due: switch it. */
static void forward(struct emu *e, int src, const uint8_t *frame, size_t len)
{
	struct port *from = &e->ports[src];
	int dst = (frame[0] & 1) ? -1 : mac_lookup(e, frame);

	if (dst == src)
		return;
	if (dst >= 0) {
		deliver(e, from, dst, frame, len);
		return;
	}
	for (int i = 0; i < e->nports; i++)
		if (i != src)
			deliver(e, from, i, frame, len);
}

/* Read what port i has sent (at most READ_BURST frames) into its queue. */
static void drain(struct emu *e, int i, uint64_t now)
{
	struct port *p = &e->ports[i];
	uint8_t scratch[FRAME_MAX];

	for (int k = 0; k < READ_BURST; k++) {
		struct slot *s = NULL;
		uint8_t *buf = scratch;
		ssize_t n;

		if (p->count < p->cap) {
			s = &p->ring[(p->head + p->count) % p->cap];
			buf = s->data;
		}
		n = read(p->fd, buf, FRAME_MAX);
		if (n < 0)
			return; /* EAGAIN: nothing more; anything else: try at the next wake-up */
		if (n < 14)
			continue; /* not an Ethernet frame */
		p->rx_frames++;
		p->rx_bytes += (uint64_t)n;
		mac_learn(e, buf + 6, i);
		if (p->loss > 0 && rng_next(e) < p->loss) {
			p->lost++;
			continue;
		}
		if (!s) {
			p->queue_drops++;
			continue;
		}
		s->len = (uint16_t)n;
		s->due_ns = now + p->delay_ns;
		p->count++;
	}
}

/* Forward every due frame; returns the next release time, or UINT64_MAX. */
static uint64_t release(struct emu *e, uint64_t now)
{
	uint64_t next = UINT64_MAX;

	for (int i = 0; i < e->nports; i++) {
		struct port *p = &e->ports[i];
		while (p->count) {
			struct slot *s = &p->ring[p->head];
			if (s->due_ns > now) {
				if (s->due_ns < next)
					next = s->due_ns;
				break;
			}
			forward(e, i, s->data, s->len);
			p->head = (p->head + 1) % p->cap;
			p->count--;
		}
	}
	return next;
}

static void usage(FILE *to)
{
	fprintf(to, "usage: linkemu [--queue FRAMES] [--seed S] NAME:DELAY_MS:LOSS_PCT ...\n"
		    "  one TAP per NAME; frames a host sends are held DELAY_MS, dropped with\n"
		    "  probability LOSS_PCT/100, then switched (MAC learning, flood otherwise).\n");
}

int main(int argc, char **argv)
{
	struct emu *e = calloc(1, sizeof *e);
	struct pollfd pfds[PORTS_MAX];
	struct sigaction sa;
	sigset_t block, orig;
	size_t queue = QUEUE_DEFAULT;
	uint64_t seed = 1;
	int rc = 2;
	char err[160];

	if (!e) {
		fprintf(stderr, "linkemu: out of memory\n");
		return 1;
	}
	for (int i = 0; i < PORTS_MAX; i++)
		e->ports[i].fd = -1;
	for (int i = 1; i < argc; i++) {
		char *end;
		if (strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			rc = 0;
			goto done;
		} else if (strcmp(argv[i], "--queue") == 0 && i + 1 < argc) {
			unsigned long q = strtoul(argv[++i], &end, 10);
			if (*end || q < 1 || q > QUEUE_MAX)
				goto bad_usage;
			queue = q;
		} else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
			seed = strtoull(argv[++i], &end, 10);
			if (*end)
				goto bad_usage;
		} else if (e->nports < PORTS_MAX && parse_port(argv[i], &e->ports[e->nports]) == 0) {
			e->nports++;
		} else {
			goto bad_usage;
		}
	}
	if (e->nports < 2)
		goto bad_usage;
	e->rng = seed * 0x9E3779B97F4A7C15ull + 1; /* never 0 */

	rc = 1;
	for (int i = 0; i < e->nports; i++) {
		struct port *p = &e->ports[i];
		p->cap = queue;
		p->ring = malloc(queue * sizeof *p->ring);
		if (!p->ring) {
			fprintf(stderr, "linkemu: out of memory for %zu frames\n", queue);
			goto done;
		}
		p->fd = tap_open(p->name, err, sizeof err);
		if (p->fd < 0) {
			fprintf(stderr, "linkemu: %s\n", err);
			goto done;
		}
		pfds[i].fd = p->fd;
		pfds[i].events = POLLIN;
	}

	/* Signals only arrive inside ppoll(): no race between a check and the wait. */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGUSR1);
	sigprocmask(SIG_BLOCK, &block, &orig);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_stats;
	sigaction(SIGUSR1, &sa, NULL);
	sigdelset(&orig, SIGTERM);
	sigdelset(&orig, SIGINT);
	sigdelset(&orig, SIGUSR1);

	printf("READY %d\n", e->nports);
	fflush(stdout);

	uint64_t next = UINT64_MAX;
	while (!stop_flag) {
		struct timespec ts, *tp = NULL;
		uint64_t now = now_ns();
		int n;

		if (next != UINT64_MAX) {
			uint64_t wait = next > now ? next - now : 0;
			ts.tv_sec = (time_t)(wait / 1000000000u);
			ts.tv_nsec = (long)(wait % 1000000000u);
			tp = &ts;
		}
		n = ppoll(pfds, (nfds_t)e->nports, tp, &orig);
		if (n < 0 && errno != EINTR) {
			fprintf(stderr, "linkemu: ppoll: %s\n", strerror(errno));
			goto done;
		}
		if (stats_flag) {
			stats_flag = 0;
			print_stats(e);
		}
		now = now_ns();
		for (int i = 0; n > 0 && i < e->nports; i++)
			if (pfds[i].revents & POLLIN)
				drain(e, i, now);
		next = release(e, now_ns());
	}
	print_stats(e);
	rc = 0;
	goto done;

bad_usage:
	usage(stderr);
	rc = 2;
done:
	for (int i = 0; i < PORTS_MAX; i++) {
		if (e->ports[i].fd >= 0)
			close(e->ports[i].fd);
		free(e->ports[i].ring);
	}
	free(e);
	return rc;
}
