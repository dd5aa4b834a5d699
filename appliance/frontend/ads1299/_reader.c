/* Compiled ADS1299 reader: the per-sample loop (DRDY edge wait, one SPI transfer per chip, a
 * timestamp check) on its own pthread without the GIL, filling a single-producer /
 * single-consumer ring that Python drains in blocks (appliance/frontend/ads1299/compiled.py).
 *
 * Backends:
 *   kernel  the Linux GPIO character device uAPI v2 (falling-edge events carry timestamp_ns on
 *           CLOCK_MONOTONIC and the line's sequence number) and spidev SPI_IOC_MESSAGE. No
 *           libgpiod needed, only <linux/gpio.h> and <linux/spi/spidev.h>.
 *   model   a C model of the chip for tests and benchmarks: it converts on its own clock
 *           (conversion k ready at t0 + k/fs on CLOCK_MONOTONIC), overwrites conversions nobody
 *           read, hands out bytes of whichever conversion is latched when each byte is clocked
 *           (so a read overlapping the next update returns mixed bytes), charges the SPI bus time
 *           at the configured SCLK, and keeps only the newest 16 edge events as the kernel does.
 *           Frames carry a pattern derived from k (see pattern_word) so a checker can prove
 *           every delivered sample exact. The model is also exposed as `Model` so the Python
 *           read loop can run against the same chip.
 *
 * Accounting (every conversion from the first edge seen to `last_seq` lands in exactly one;
 * a failed SPI transfer is a fifth, `spi_errors`):
 *   frames         read in time and put in the ring
 *   overwritten    never read: the edge sequence number jumped past it, or the timestamps
 *                  did where the kernel reported coalesced edges as one (also in `coalesced`)
 *   late           read, but the transfer ended after the next conversion's update: dropped
 *   ring_overflow  read in time but the ring was full (Python did not drain): dropped
 * `late_stamps` counts edges stamped late (IRQ held off); their deadline comes from the
 * previous edge + one period, and that estimate is the frame's drdy_ns.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include <linux/gpio.h>
#include <linux/spi/spidev.h>

#define MAX_CHIPS 2
#define MAX_FRAME_BYTES 27
#define KERNEL_EVENT_BUFFER 16 /* gpiolib-cdev default: 16 events per requested line */
#define WAIT_SLICE_MS 100      /* the loop checks `running` at least this often */
#define HIST_BIN_NS 50
#define HIST_BINS 80000 /* 50 ns bins up to 4 ms; the last bin holds everything slower */
#define SPI_MODE_ADS1299 SPI_MODE_1
#define CLOCK_TOLERANCE 0.05 /* the chip's oscillator vs CLOCK_MONOTONIC: a generous bound */
#define LOSS_LOG 65536       /* loss events kept (the first ones; `loss_events_dropped` counts more) */

/* One loss event (overwritten conversions, a late read, a full ring, an SPI error), for telling
 * the scheduler's share from the loop's (bench/acquisition.py soak). */
typedef struct {
    int64_t index;        /* sample index of the read that found the loss */
    int32_t kind;         /* 1 overwritten, 2 late, 3 ring_overflow, 4 spi_error */
    int32_t n;            /* conversions lost */
    int64_t wake_ns;      /* the oldest unread edge (expected from the previous one) -> running */
    int64_t done_ns;      /* this read's edge -> read done */
    int64_t read_ns;      /* the loop running -> read done (bus time, unless interrupted) */
    int64_t run_delay_ns; /* runnable-but-not-running time since the previous read (schedstat;
                             -1 without sched_trace) */
} LossEvent;

static int64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_until_ns(int64_t t_ns) {
    struct timespec ts = {.tv_sec = t_ns / 1000000000LL, .tv_nsec = t_ns % 1000000000LL};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

/* ---- the chip model ------------------------------------------------------------------- */

typedef struct {
    int n_chips;
    int frame_bytes; /* per chip: 3 status + 3 per channel */
    int64_t period_ns;
    int64_t byte_ns; /* 8 SCLK periods */
    int64_t t0_ns;   /* conversion k is ready at t0 + k * period */
    int64_t next_k;  /* first conversion whose edge event has not been read */
    int64_t trig_period, trig_width;
    int64_t spin_ns; /* see model_wait */
    /* injected: the GPIO IRQ thread is held off, so edges coalesce_k..coalesce_k+coalesce_n
     * give one event (line_seqno + 1), stamped late when the line is unmasked */
    int64_t coalesce_k, coalesce_n, seq_lag;
} ChipModel;

/* 24-bit channel word of conversion k, channel j (0-based across chips); numpy reproduces it
 * with uint64 arithmetic (tests/frontend/ads1299/test_compiled_reader.py). */
static uint32_t pattern_word(uint64_t k, uint64_t j) {
    return (uint32_t)(((k * 2654435761ULL) ^ ((j + 1) * 40503ULL << 8)) & 0xFFFFFFULL);
}

static uint8_t pattern_byte(const ChipModel *m, int64_t k, int chip, int i) {
    if (i < 3) { /* status: 1100, LOFF_STATP = LOFF_STATN = 0, GPIO1 = trigger on chip 1 */
        uint32_t gpio = 0;
        if (chip == 0 && m->trig_period > 0 && (k % m->trig_period) < m->trig_width) gpio = 1;
        uint32_t word = 0xC00000u | gpio;
        return (uint8_t)(word >> (16 - 8 * i));
    }
    int n_ch = (m->frame_bytes - 3) / 3;
    int ch = (i - 3) / 3, b = (i - 3) % 3;
    uint32_t w = pattern_word((uint64_t)k, (uint64_t)(chip * n_ch + ch));
    return (uint8_t)(w >> (16 - 8 * b));
}

static void model_start(ChipModel *m) {
    m->t0_ns = mono_ns() + 1000000; /* first conversion 1 ms from now */
    m->next_k = 0;
}

/* Newest conversion ready at t (-1 if none yet). */
static int64_t model_latest(const ChipModel *m, int64_t t) {
    return t < m->t0_ns ? -1 : (t - m->t0_ns) / m->period_ns;
}

/* Wait for edge events like poll()+read() on a line request fd: 1 with the newest event's
 * seqno (k + 1, as the kernel counts from 1) and timestamp, 0 on timeout. */
static int model_wait(ChipModel *m, int timeout_ms, int64_t *seqno, int64_t *ts_ns) {
    int64_t now = mono_ns();
    int64_t latest = model_latest(m, now);
    if (latest < m->next_k) {
        int64_t due = m->t0_ns + m->next_k * m->period_ns;
        int64_t limit = now + (int64_t)timeout_ms * 1000000LL;
        int64_t wake = due < limit ? due : limit;
        /* sleep, then spin the last spin_ns: a timed wake-up in a VM can take hundreds of µs,
         * far more than a Pi's DRDY interrupt reaching a SCHED_FIFO thread */
        if (wake - m->spin_ns > now) sleep_until_ns(wake - m->spin_ns);
        while (mono_ns() < wake) {
        }
        latest = model_latest(m, mono_ns());
        if (latest < m->next_k) return 0;
    }
    int64_t stamp_late_ns = 0;
    if (m->coalesce_k >= 0 && latest >= m->coalesce_k) {
        int64_t last = m->coalesce_k + m->coalesce_n;
        sleep_until_ns(m->t0_ns + last * m->period_ns);
        if (latest < last) latest = last;
        m->seq_lag += m->coalesce_n;
        m->coalesce_k = -1;
        stamp_late_ns = m->period_ns / 4;
    }
    /* the kernel's kfifo keeps the newest KERNEL_EVENT_BUFFER; the reader takes the newest */
    m->next_k = latest + 1;
    *seqno = latest + 1 - m->seq_lag;
    *ts_ns = m->t0_ns + latest * m->period_ns + stamp_late_ns;
    return 1;
}

/* One chip-select-low transfer of n bytes from `chip`: each byte comes from the conversion
 * latched when it is clocked out; returns when the bus time has passed. */
static void model_xfer(const ChipModel *m, int chip, uint8_t *rx, int n) {
    int64_t t_start = mono_ns();
    for (int i = 0; i < n; i++) {
        int64_t k = model_latest(m, t_start + i * m->byte_ns);
        rx[i] = k < 0 ? 0 : pattern_byte(m, k, chip, i % m->frame_bytes);
    }
    int64_t t_end = t_start + n * m->byte_ns;
    while (mono_ns() < t_end) {
    }
}

static int model_init(ChipModel *m, int n_chips, int frame_bytes, double rate_hz, double sclk_hz,
                      long trig_period, long trig_width, double clock_error) {
    if (n_chips < 1 || n_chips > MAX_CHIPS || frame_bytes < 6 || frame_bytes > MAX_FRAME_BYTES ||
        (frame_bytes - 3) % 3 || rate_hz <= 0 || sclk_hz <= 0 || trig_period < 0 ||
        trig_width < 0) {
        PyErr_Format(PyExc_ValueError,
                     "ADS1299 reader: n_chips %d (1..2), frame_bytes %d (6..27, 3 + 3 per "
                     "channel), rate_hz %g (> 0), sclk_hz %g (> 0), trigger period/width %ld/%ld"
                     " (>= 0)",
                     n_chips, frame_bytes, rate_hz, sclk_hz, trig_period, trig_width);
        return -1;
    }
    memset(m, 0, sizeof(*m));
    m->n_chips = n_chips;
    m->frame_bytes = frame_bytes;
    m->period_ns = (int64_t)(1e9 / rate_hz * (1.0 + clock_error) + 0.5); /* the chip's own */
    m->byte_ns = (int64_t)(8e9 / sclk_hz + 0.5);
    m->trig_period = trig_period;
    m->trig_width = trig_width;
    m->coalesce_k = -1;
    return 0;
}

/* ---- the reader ----------------------------------------------------------------------- */

enum { BACKEND_MODEL = 0, BACKEND_KERNEL = 1 };

typedef struct {
    PyObject_HEAD
    int backend;
    ChipModel model;   /* model backend; also holds n_chips/frame_bytes/period for both */
    int64_t guard_ns;  /* a read must end this long before the next update */
    int64_t period_ns; /* nominal, from the configured rate (the model's clock may differ) */
    uint32_t sclk_hz;
    /* kernel backend */
    char gpiochip[256];
    unsigned int drdy_line;
    int shared_line_fd; /* >= 0: a line request fd made elsewhere (dup'ed at start) */
    char spi_paths[MAX_CHIPS][64];
    int line_fd;
    int spi_fd[MAX_CHIPS];
    /* model backend: the reader thread sleeps stall_ns once, stall_at_ns after start */
    int64_t stall_at_ns, stall_ns;
    /* thread */
    int priority, cpu;
    int reverse_read; /* read chip 2 first (it starts, so converts, later on a shared clock) */
    pthread_t thread;
    int thread_started;
    atomic_int running;
    int sched_fifo; /* 1 if SCHED_FIFO was granted */
    int pinned;
    char sched_note[160];
    /* ring: slots [tail, head) are full; only the thread moves head, only drain moves tail */
    size_t ring_frames, sample_bytes;
    uint8_t *raw;
    int64_t *seq, *drdy_ns;
    _Atomic uint64_t head, tail;
    /* counts: written by the thread only, read racily by counts() */
    _Atomic uint64_t n_frames, n_overwritten, n_late, n_ring_overflow, n_spi_errors,
        n_wait_errors, n_coalesced, n_late_stamps;
    _Atomic int64_t last_seq;
    _Atomic int64_t first_seqno; /* edge sequence number of conversion 0 (model: k + 1) */
    int64_t last_seqno, index_offset; /* the thread's, kept across stop/start */
    char error[200];
    uint32_t *hist; /* per-sample loop cost: from the edge wait returning to the next wait */
    uint32_t *wake_hist; /* wake-up latency: DRDY edge timestamp to the wait returning */
    uint32_t *done_hist; /* DRDY edge timestamp to the read done (what the deadline checks) */
    _Atomic int64_t done_max_ns;
    int64_t over_ns; /* threshold for n_over (default 250 µs: a period at 4 kSPS) */
    _Atomic uint64_t n_over;
    int sched_trace; /* read /proc/thread-self/schedstat per sample for LossEvent.run_delay_ns */
    LossEvent *loss_log;
    _Atomic uint64_t n_loss_events;
} Reader;

static void log_loss(Reader *r, int64_t index, int kind, int64_t n, int64_t wake_ns,
                     int64_t done_ns, int64_t read_ns, int64_t run_delay_ns) {
    uint64_t i = atomic_load_explicit(&r->n_loss_events, memory_order_relaxed);
    if (i < LOSS_LOG)
        r->loss_log[i] =
            (LossEvent){index, kind, (int32_t)n, wake_ns, done_ns, read_ns, run_delay_ns};
    atomic_store_explicit(&r->n_loss_events, i + 1, memory_order_release);
}

/* The calling thread's run-queue delay (ns runnable but not running, schedstat field 2), or -1. */
static int64_t run_delay_ns(int fd) {
    char buf[96];
    if (fd < 0) return -1;
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    if (n <= 0) return -1;
    buf[n] = 0;
    long long on_cpu = 0, delay = -1;
    return sscanf(buf, "%lld %lld", &on_cpu, &delay) == 2 ? (int64_t)delay : -1;
}

static int kernel_wait(Reader *r, int timeout_ms, int64_t *seqno, int64_t *ts_ns) {
    struct pollfd p = {.fd = r->line_fd, .events = POLLIN};
    int rc = poll(&p, 1, timeout_ms);
    if (rc == 0 || (rc < 0 && errno == EINTR)) return 0;
    if (rc < 0) return -1;
    struct gpio_v2_line_event ev[KERNEL_EVENT_BUFFER];
    ssize_t got = read(r->line_fd, ev, sizeof(ev)); /* every queued event, oldest first */
    if (got < 0) return errno == EINTR || errno == EAGAIN ? 0 : -1;
    size_t n = (size_t)got / sizeof(ev[0]);
    if (n == 0) return 0;
    *seqno = (int64_t)ev[n - 1].line_seqno;
    *ts_ns = (int64_t)ev[n - 1].timestamp_ns;
    return 1;
}

static int kernel_xfer(Reader *r, int chip, uint8_t *rx, int n) {
    static const uint8_t zeros[MAX_FRAME_BYTES * MAX_CHIPS];
    struct spi_ioc_transfer t;
    memset(&t, 0, sizeof(t));
    t.tx_buf = (uintptr_t)zeros;
    t.rx_buf = (uintptr_t)rx;
    t.len = (uint32_t)n;
    t.speed_hz = r->sclk_hz;
    t.bits_per_word = 8;
    return ioctl(r->spi_fd[chip], SPI_IOC_MESSAGE(1), &t) < 0 ? -1 : 0;
}

static void *reader_loop(void *arg) {
    Reader *r = (Reader *)arg;
    ChipModel *m = &r->model;
    const int fb = m->frame_bytes;
    uint8_t scratch[MAX_FRAME_BYTES * MAX_CHIPS];
    /* the origin, the last sequence number and the offset persist across stop/start (the chips
     * are reconfigured meanwhile; numbering continues); timestamps do not: a pause is no loss */
    int64_t first_seqno = r->first_seqno, last_seqno = r->last_seqno, t_woke = 0, last_ts = 0;
    int have_ts = 0;
    double period_est = (double)r->period_ns; /* measured from the edges, see below */
    const double period_lo = r->period_ns * (1 - CLOCK_TOLERANCE),
                 period_hi = r->period_ns * (1 + CLOCK_TOLERANCE);
    int64_t stall_due = r->stall_ns > 0 ? m->t0_ns + r->stall_at_ns : INT64_MAX;
    int sched_fd = r->sched_trace ? open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC) : -1;
    int64_t run_delay_prev = run_delay_ns(sched_fd);
    prctl(PR_SET_TIMERSLACK, 1UL); /* the model's timed wake stands for an interrupt: no slack */
    while (atomic_load_explicit(&r->running, memory_order_relaxed)) {
        if (t_woke) {
            int64_t bin = (mono_ns() - t_woke) / HIST_BIN_NS;
            r->hist[bin < HIST_BINS - 1 ? bin : HIST_BINS - 1]++;
        }
        int64_t seqno, ts_ns;
        int rc = r->backend == BACKEND_MODEL ? model_wait(m, WAIT_SLICE_MS, &seqno, &ts_ns)
                                             : kernel_wait(r, WAIT_SLICE_MS, &seqno, &ts_ns);
        t_woke = 0;
        if (rc < 0) {
            atomic_fetch_add(&r->n_wait_errors, 1);
            snprintf(r->error, sizeof(r->error), "DRDY wait: %s", strerror(errno));
            usleep(1000); /* a broken fd must not spin a SCHED_FIFO thread */
            continue;
        }
        if (rc == 0) continue;
        t_woke = mono_ns();
        int64_t wbin = (t_woke - ts_ns) / HIST_BIN_NS;
        r->wake_hist[wbin < 0 ? 0 : wbin < HIST_BINS - 1 ? wbin : HIST_BINS - 1]++;
        if (t_woke >= stall_due) { /* injected: the reader is descheduled for stall_ns */
            stall_due = INT64_MAX;
            sleep_until_ns(t_woke + r->stall_ns);
        }
        if (first_seqno < 0) {
            last_seqno = (first_seqno = seqno) - 1;
            atomic_store(&r->first_seqno, first_seqno);
        }
        if (seqno <= last_seqno) continue; /* an edge queued before a stop, already counted */
        int64_t jump = seqno - last_seqno;
        if (!have_ts) {
            last_ts = ts_ns - jump * r->period_ns;
            have_ts = 1;
        }
        /* line_seqno counts runs of the kernel's IRQ thread: held off past an edge, it reports
         * two edges as one (IRQF_ONESHOT masks the line meanwhile). The timestamps tell, counted
         * at a period a little longer than measured (so a long gap is never over-counted). */
        int64_t gap_ns = ts_ns - last_ts;
        int64_t jump_ts = (int64_t)((double)gap_ns / (period_est * 1.005) + 0.5);
        if (jump_ts > jump) {
            atomic_fetch_add(&r->n_coalesced, jump_ts - jump);
            r->index_offset += jump_ts - jump;
            jump = jump_ts;
        }
        if (jump > 1) atomic_fetch_add(&r->n_overwritten, jump - 1);
        /* from the oldest edge not yet read (one period after the last one read) */
        int64_t wake_ns = t_woke - (last_ts + (int64_t)period_est);
        /* an edge stamped late (when the line was unmasked) would move the deadline past the
         * update: after a short jump, trust the previous edge + the periods instead (short: so
         * an error in the period estimate does not add up) */
        int64_t edge_ns = ts_ns, predicted = last_ts + (int64_t)(jump * period_est);
        if (jump <= 4 && ts_ns - predicted > r->period_ns / 8) {
            edge_ns = predicted;
            atomic_fetch_add(&r->n_late_stamps, 1);
        } else if (jump == 1) { /* the chip's own clock, measured (its oscillator is not exact) */
            period_est += ((double)gap_ns - period_est) / 64.0;
            if (period_est < period_lo) period_est = period_lo;
            if (period_est > period_hi) period_est = period_hi;
        }
        r->last_seqno = last_seqno = seqno;
        last_ts = edge_ns;
        int64_t index = seqno - first_seqno + r->index_offset;
        uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
        uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
        int full = head - tail >= r->ring_frames;
        uint8_t *dst = full ? scratch : r->raw + (head % r->ring_frames) * r->sample_bytes;
        int spi_ok = 1;
        for (int j = 0; j < m->n_chips; j++) {
            int c = r->reverse_read ? m->n_chips - 1 - j : j;
            if (r->backend == BACKEND_MODEL)
                model_xfer(m, c, dst + c * fb, fb);
            else if (kernel_xfer(r, c, dst + c * fb, fb) < 0)
                spi_ok = 0;
        }
        int64_t t_end = mono_ns(), done_ns = t_end - edge_ns;
        int64_t dbin = done_ns / HIST_BIN_NS;
        r->done_hist[dbin < 0 ? 0 : dbin < HIST_BINS - 1 ? dbin : HIST_BINS - 1]++;
        if (done_ns > atomic_load_explicit(&r->done_max_ns, memory_order_relaxed))
            atomic_store_explicit(&r->done_max_ns, done_ns, memory_order_relaxed);
        if (done_ns > r->over_ns) atomic_fetch_add(&r->n_over, 1);
        int64_t rd = run_delay_ns(sched_fd), rd_delta = rd >= 0 && run_delay_prev >= 0 ?
                                                       rd - run_delay_prev : -1;
        run_delay_prev = rd;
        int64_t read_ns = t_end - t_woke;
        if (jump > 1) log_loss(r, index, 1, jump - 1, wake_ns, done_ns, read_ns, rd_delta);
        if (!spi_ok) {
            atomic_fetch_add(&r->n_spi_errors, 1);
            snprintf(r->error, sizeof(r->error), "SPI transfer: %s", strerror(errno));
            log_loss(r, index, 4, 1, wake_ns, done_ns, read_ns, rd_delta);
        } else if (t_end > edge_ns + (int64_t)period_est - r->guard_ns) {
            atomic_fetch_add(&r->n_late, 1); /* may hold bytes of the next conversion */
            log_loss(r, index, 2, 1, wake_ns, done_ns, read_ns, rd_delta);
        } else if (full) {
            atomic_fetch_add(&r->n_ring_overflow, 1);
            log_loss(r, index, 3, 1, wake_ns, done_ns, read_ns, rd_delta);
        } else {
            size_t slot = head % r->ring_frames;
            r->seq[slot] = index;
            r->drdy_ns[slot] = edge_ns;
            atomic_fetch_add(&r->n_frames, 1);
            atomic_store_explicit(&r->head, head + 1, memory_order_release);
        }
        atomic_store_explicit(&r->last_seq, index, memory_order_relaxed);
    }
    if (sched_fd >= 0) close(sched_fd);
    return NULL;
}

static void reader_close_fds(Reader *r) {
    if (r->line_fd >= 0) close(r->line_fd);
    r->line_fd = -1;
    for (int c = 0; c < MAX_CHIPS; c++) {
        if (r->spi_fd[c] >= 0) close(r->spi_fd[c]);
        r->spi_fd[c] = -1;
    }
}

static int kernel_open_spi(Reader *r);

/* Open the DRDY line (falling edges, pull-up, CLOCK_MONOTONIC timestamps) and the spidevs. */
static int kernel_open(Reader *r) {
    int err;
    if (r->shared_line_fd >= 0) { /* a request made by libgpiod (spi.GpiodDrdy): share it */
        r->line_fd = fcntl(r->shared_line_fd, F_DUPFD_CLOEXEC, 0);
        if (r->line_fd < 0) {
            PyErr_Format(PyExc_OSError, "ADS1299 DRDY: cannot share line request fd %d (%s)",
                         r->shared_line_fd, strerror(errno));
            return -1;
        }
        return kernel_open_spi(r);
    }
    int chip_fd = open(r->gpiochip, O_RDONLY | O_CLOEXEC);
    if (chip_fd < 0) {
        PyErr_Format(PyExc_OSError, "ADS1299 DRDY: cannot open %s (%s)", r->gpiochip,
                     strerror(errno));
        return -1;
    }
    struct gpio_v2_line_request req;
    memset(&req, 0, sizeof(req));
    req.offsets[0] = r->drdy_line;
    req.num_lines = 1;
    snprintf(req.consumer, sizeof(req.consumer), "ionm-ads1299");
    req.config.flags = GPIO_V2_LINE_FLAG_INPUT | GPIO_V2_LINE_FLAG_EDGE_FALLING |
                       GPIO_V2_LINE_FLAG_BIAS_PULL_UP;
    int rc = ioctl(chip_fd, GPIO_V2_GET_LINE_IOCTL, &req);
    err = errno;
    close(chip_fd);
    if (rc < 0) {
        PyErr_Format(PyExc_OSError, "ADS1299 DRDY: cannot request line %u on %s (%s)",
                     r->drdy_line, r->gpiochip, strerror(err));
        return -1;
    }
    r->line_fd = req.fd;
    return kernel_open_spi(r);
}

static int kernel_open_spi(Reader *r) {
    int err;
    uint8_t mode = SPI_MODE_ADS1299, bits = 8;
    for (int c = 0; c < r->model.n_chips; c++) {
        int fd = open(r->spi_paths[c], O_RDWR | O_CLOEXEC);
        if (fd < 0 || ioctl(fd, SPI_IOC_WR_MODE, &mode) < 0 ||
            ioctl(fd, SPI_IOC_WR_BITS_PER_WORD, &bits) < 0 ||
            ioctl(fd, SPI_IOC_WR_MAX_SPEED_HZ, &r->sclk_hz) < 0) {
            err = errno;
            if (fd >= 0) close(fd);
            reader_close_fds(r);
            PyErr_Format(PyExc_OSError, "ADS1299: cannot open %s in SPI mode 1 at %u Hz (%s)",
                         r->spi_paths[c], r->sclk_hz, strerror(err));
            return -1;
        }
        r->spi_fd[c] = fd;
    }
    return 0;
}

/* SCHED_FIFO at `priority` if permitted, else the normal policy (noted); pinned to `cpu` >= 0
 * where that CPU exists. */
static int reader_spawn(Reader *r) {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    if (r->cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(r->cpu, &set);
        r->pinned = pthread_attr_setaffinity_np(&attr, sizeof(set), &set) == 0;
    }
    int rc = EPERM;
    if (r->priority > 0) {
        struct sched_param sp = {.sched_priority = r->priority};
        pthread_attr_setinheritsched(&attr, PTHREAD_EXPLICIT_SCHED);
        pthread_attr_setschedpolicy(&attr, SCHED_FIFO);
        pthread_attr_setschedparam(&attr, &sp);
        rc = pthread_create(&r->thread, &attr, reader_loop, r);
        r->sched_fifo = rc == 0;
        if (rc)
            snprintf(r->sched_note, sizeof(r->sched_note),
                     "SCHED_FIFO %d not permitted (%s): normal scheduling (grant CAP_SYS_NICE or "
                     "LimitRTPRIO)", r->priority, strerror(rc));
        else
            snprintf(r->sched_note, sizeof(r->sched_note), "SCHED_FIFO %d", r->priority);
    } else {
        snprintf(r->sched_note, sizeof(r->sched_note), "normal scheduling (priority 0 asked)");
    }
    if (rc) {
        pthread_attr_t plain;
        pthread_attr_init(&plain);
        if (r->cpu >= 0) {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(r->cpu, &set);
            r->pinned = pthread_attr_setaffinity_np(&plain, sizeof(set), &set) == 0;
        }
        rc = pthread_create(&r->thread, &plain, reader_loop, r);
        pthread_attr_destroy(&plain);
    }
    pthread_attr_destroy(&attr);
    if (rc) {
        PyErr_Format(PyExc_OSError, "ADS1299 reader: cannot start its thread (%s)", strerror(rc));
        return -1;
    }
    r->thread_started = 1;
    return 0;
}

static void reader_join(Reader *r) {
    if (!r->thread_started) return;
    atomic_store(&r->running, 0);
    Py_BEGIN_ALLOW_THREADS
    pthread_join(r->thread, NULL);
    Py_END_ALLOW_THREADS
    r->thread_started = 0;
}

static PyObject *Reader_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"backend", "n_chips", "frame_bytes", "rate_hz", "sclk_hz",
                             "ring_frames", "gpiochip", "drdy_line", "spi_paths", "priority",
                             "cpu", "guard_ns", "trigger_period", "trigger_width", "stall_at_s",
                             "stall_ms", "spin_us", "reverse_read", "coalesce_at_s", "coalesce_n",
                             "line_fd", "clock_error", "over_ns", "sched_trace", NULL};
    const char *backend = "model", *gpiochip = "/dev/gpiochip0";
    int n_chips = 1, frame_bytes = 27, priority = 0, cpu = -1, reverse_read = 0;
    double rate_hz = 4000, sclk_hz = 4e6, stall_at_s = 0, stall_ms = 0, spin_us = 0;
    double coalesce_at_s = -1;
    long coalesce_n = 0;
    int line_fd = -1;
    double clock_error = 0;
    long long over_ns = 250000;
    int sched_trace = 0;
    Py_ssize_t ring_frames = 65536;
    unsigned int drdy_line = 0;
    long long guard_ns = 0;
    long trig_period = 0, trig_width = 1;
    PyObject *spi_paths = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|siiddnsIOiiLlldddpdlidLp", kwlist, &backend, &n_chips,
                                     &frame_bytes, &rate_hz, &sclk_hz, &ring_frames, &gpiochip,
                                     &drdy_line, &spi_paths, &priority, &cpu, &guard_ns,
                                     &trig_period, &trig_width, &stall_at_s, &stall_ms, &spin_us, &reverse_read,
                                     &coalesce_at_s, &coalesce_n, &line_fd, &clock_error,
                                     &over_ns, &sched_trace))
        return NULL;
    Reader *r = (Reader *)type->tp_alloc(type, 0);
    if (!r) return NULL;
    r->line_fd = -1;
    for (int c = 0; c < MAX_CHIPS; c++) r->spi_fd[c] = -1;
    if (model_init(&r->model, n_chips, frame_bytes, rate_hz, sclk_hz, trig_period, trig_width,
                   clock_error))
        goto fail;
    r->period_ns = (int64_t)(1e9 / rate_hz + 0.5);
    r->model.spin_ns = (int64_t)(spin_us * 1e3);
    if (coalesce_at_s >= 0 && coalesce_n > 0) {
        r->model.coalesce_k = (int64_t)(coalesce_at_s * rate_hz);
        r->model.coalesce_n = coalesce_n;
    }
    if (!strcmp(backend, "model")) {
        r->backend = BACKEND_MODEL;
    } else if (!strcmp(backend, "kernel")) {
        r->backend = BACKEND_KERNEL;
    } else {
        PyErr_Format(PyExc_ValueError, "ADS1299 reader: backend %s, allowed: model, kernel",
                     backend);
        goto fail;
    }
    if (ring_frames < 16 || ring_frames > (1 << 24) || guard_ns < 0 || stall_ms < 0 ||
        clock_error <= -0.5 || clock_error >= 0.5) {
        PyErr_Format(PyExc_ValueError, "ADS1299 reader: ring_frames %zd (16..16777216), "
                     "guard_ns %lld and stall_ms %g (>= 0), clock_error %g (-0.5..0.5)",
                     ring_frames, guard_ns, stall_ms, clock_error);
        goto fail;
    }
    snprintf(r->gpiochip, sizeof(r->gpiochip), "%s", gpiochip);
    r->drdy_line = drdy_line;
    r->shared_line_fd = line_fd;
    if (spi_paths && spi_paths != Py_None) {
        PyObject *seq = PySequence_Fast(spi_paths, "spi_paths must be a sequence of str");
        if (!seq) goto fail;
        Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
        for (Py_ssize_t i = 0; i < n && i < MAX_CHIPS; i++) {
            const char *p = PyUnicode_AsUTF8(PySequence_Fast_GET_ITEM(seq, i));
            if (!p) {
                Py_DECREF(seq);
                goto fail;
            }
            snprintf(r->spi_paths[i], sizeof(r->spi_paths[i]), "%s", p);
        }
        Py_DECREF(seq);
        if (n < n_chips) {
            PyErr_Format(PyExc_ValueError, "ADS1299 reader: %d chips need %d spi_paths, got %zd",
                         n_chips, n_chips, n);
            goto fail;
        }
    } else if (r->backend == BACKEND_KERNEL) {
        PyErr_SetString(PyExc_ValueError, "ADS1299 reader: the kernel backend needs spi_paths");
        goto fail;
    }
    r->sclk_hz = (uint32_t)sclk_hz;
    r->guard_ns = guard_ns;
    r->priority = priority;
    r->reverse_read = reverse_read;
    r->cpu = cpu;
    r->stall_at_ns = (int64_t)(stall_at_s * 1e9);
    r->stall_ns = (int64_t)(stall_ms * 1e6);
    r->ring_frames = (size_t)ring_frames;
    r->sample_bytes = (size_t)(n_chips * frame_bytes);
    r->raw = PyMem_Calloc(r->ring_frames, r->sample_bytes);
    r->seq = PyMem_Calloc(r->ring_frames, sizeof(int64_t));
    r->drdy_ns = PyMem_Calloc(r->ring_frames, sizeof(int64_t));
    r->hist = PyMem_Calloc(HIST_BINS, sizeof(uint32_t));
    r->wake_hist = PyMem_Calloc(HIST_BINS, sizeof(uint32_t));
    r->done_hist = PyMem_Calloc(HIST_BINS, sizeof(uint32_t));
    r->loss_log = PyMem_Calloc(LOSS_LOG, sizeof(LossEvent));
    r->over_ns = over_ns;
    r->sched_trace = sched_trace;
    if (!r->raw || !r->seq || !r->drdy_ns || !r->hist || !r->wake_hist || !r->done_hist ||
        !r->loss_log) {
        PyErr_NoMemory();
        goto fail;
    }
    /* touch every page now so the loop never page-faults on first use */
    memset(r->raw, 0, r->ring_frames * r->sample_bytes);
    memset(r->seq, 0, r->ring_frames * sizeof(int64_t));
    memset(r->drdy_ns, 0, r->ring_frames * sizeof(int64_t));
    atomic_store(&r->last_seq, -1);
    atomic_store(&r->first_seqno, -1);
    return (PyObject *)r;
fail:
    Py_DECREF(r);
    return NULL;
}

static void Reader_dealloc(Reader *r) {
    reader_join(r);
    reader_close_fds(r);
    PyMem_Free(r->raw);
    PyMem_Free(r->seq);
    PyMem_Free(r->drdy_ns);
    PyMem_Free(r->hist);
    PyMem_Free(r->wake_hist);
    PyMem_Free(r->done_hist);
    PyMem_Free(r->loss_log);
    Py_TYPE(r)->tp_free((PyObject *)r);
}

static PyObject *Reader_start(Reader *r, PyObject *Py_UNUSED(ignored)) {
    if (r->thread_started) {
        PyErr_SetString(PyExc_RuntimeError, "ADS1299 reader: already started");
        return NULL;
    }
    if (r->backend == BACKEND_KERNEL && r->line_fd < 0 && kernel_open(r)) return NULL;
    if (r->backend == BACKEND_MODEL && r->model.t0_ns == 0)
        model_start(&r->model); /* the chip then converts until the reader is deallocated */
    atomic_store(&r->running, 1);
    if (reader_spawn(r)) {
        reader_close_fds(r);
        return NULL;
    }
    Py_RETURN_NONE;
}

/* stop() ends the thread. A line request of our own stays open so that the kernel's edge
 * numbering continues across a reconfiguration (close() or deallocation closes it); a shared
 * one lives on in its owner, so our copies are closed. */
static PyObject *Reader_stop(Reader *r, PyObject *Py_UNUSED(ignored)) {
    reader_join(r);
    if (r->shared_line_fd >= 0) reader_close_fds(r);
    Py_RETURN_NONE;
}

/* set_guard_ns(ns): a read must end this long before the next DRDY edge, from now on. Only while
 * stopped (the thread reads guard_ns unlocked): the front end widens it by the chips' start skew,
 * since chip 2, started first, takes its next conversion that much before chip 1's edge. */
static PyObject *Reader_set_guard_ns(Reader *r, PyObject *args) {
    long long guard_ns;
    if (!PyArg_ParseTuple(args, "L", &guard_ns)) return NULL;
    if (r->thread_started || guard_ns < 0) {
        PyErr_Format(PyExc_ValueError, "ADS1299 reader: guard_ns %lld must be >= 0 and set while "
                     "stopped", guard_ns);
        return NULL;
    }
    r->guard_ns = guard_ns;
    Py_RETURN_NONE;
}

static PyObject *Reader_close(Reader *r, PyObject *Py_UNUSED(ignored)) {
    reader_join(r);
    reader_close_fds(r);
    Py_RETURN_NONE;
}

/* drain(max_frames, timeout_s) -> (raw bytes, seq bytes of int64, drdy_ns bytes of int64):
 * as soon as max_frames are queued, else after timeout_s with what is queued (maybe nothing).
 * Waits with the GIL released, polling every 0.5 ms. */
static PyObject *Reader_drain(Reader *r, PyObject *args) {
    Py_ssize_t max_frames;
    double timeout_s;
    if (!PyArg_ParseTuple(args, "nd", &max_frames, &timeout_s)) return NULL;
    if (max_frames < 0) max_frames = 0;
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    if (head - tail < (uint64_t)max_frames && timeout_s > 0) {
        int64_t deadline = mono_ns() + (int64_t)(timeout_s * 1e9);
        Py_BEGIN_ALLOW_THREADS
        while ((head = atomic_load_explicit(&r->head, memory_order_acquire)) - tail <
                   (uint64_t)max_frames && mono_ns() < deadline)
            usleep(500);
        Py_END_ALLOW_THREADS
    }
    size_t n = (size_t)(head - tail);
    if (n > (size_t)max_frames) n = (size_t)max_frames;
    PyObject *raw = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(n * r->sample_bytes));
    PyObject *seq = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(n * sizeof(int64_t)));
    PyObject *ts = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(n * sizeof(int64_t)));
    if (!raw || !seq || !ts) {
        Py_XDECREF(raw);
        Py_XDECREF(seq);
        Py_XDECREF(ts);
        return NULL;
    }
    uint8_t *praw = (uint8_t *)PyBytes_AS_STRING(raw);
    int64_t *pseq = (int64_t *)PyBytes_AS_STRING(seq), *pts = (int64_t *)PyBytes_AS_STRING(ts);
    for (size_t done = 0; done < n;) { /* at most two runs: up to the ring's end, then from 0 */
        size_t slot = (tail + done) % r->ring_frames;
        size_t run = r->ring_frames - slot;
        if (run > n - done) run = n - done;
        memcpy(praw + done * r->sample_bytes, r->raw + slot * r->sample_bytes,
               run * r->sample_bytes);
        memcpy(pseq + done, r->seq + slot, run * sizeof(int64_t));
        memcpy(pts + done, r->drdy_ns + slot, run * sizeof(int64_t));
        done += run;
    }
    atomic_store_explicit(&r->tail, tail + n, memory_order_release);
    return Py_BuildValue("(NNN)", raw, seq, ts);
}

static PyObject *Reader_counts(Reader *r, PyObject *Py_UNUSED(ignored)) {
    return Py_BuildValue(
        "{s:K,s:K,s:K,s:K,s:K,s:K,s:L,s:L,s:K,s:K,s:K}", "frames", (unsigned long long)r->n_frames,
        "overwritten", (unsigned long long)r->n_overwritten, "late",
        (unsigned long long)r->n_late, "ring_overflow", (unsigned long long)r->n_ring_overflow,
        "spi_errors", (unsigned long long)r->n_spi_errors, "wait_errors",
        (unsigned long long)r->n_wait_errors, "last_seq", (long long)r->last_seq, "first_seqno",
        (long long)r->first_seqno, "queued", (unsigned long long)(r->head - r->tail),
        "coalesced", (unsigned long long)r->n_coalesced, "late_stamps",
        (unsigned long long)r->n_late_stamps);
}

static PyObject *Reader_info(Reader *r, PyObject *Py_UNUSED(ignored)) {
    return Py_BuildValue("{s:s,s:O,s:O,s:s,s:s,s:L}", "backend",
                         r->backend == BACKEND_MODEL ? "model" : "kernel", "sched_fifo",
                         r->sched_fifo ? Py_True : Py_False, "pinned",
                         r->pinned ? Py_True : Py_False, "sched", r->sched_note, "error",
                         r->error, "hist_bin_ns", (long long)HIST_BIN_NS);
}

/* Histograms (uint32 counts of HIST_BIN_NS bins, as bytes) of the per-sample loop cost and of
 * the wake-up latency from the DRDY edge. */
static PyObject *Reader_cost_hist(Reader *r, PyObject *Py_UNUSED(ignored)) {
    return PyBytes_FromStringAndSize((const char *)r->hist, HIST_BINS * sizeof(uint32_t));
}

static PyObject *Reader_wake_hist(Reader *r, PyObject *Py_UNUSED(ignored)) {
    return PyBytes_FromStringAndSize((const char *)r->wake_hist, HIST_BINS * sizeof(uint32_t));
}

static PyObject *Reader_done_hist(Reader *r, PyObject *Py_UNUSED(ignored)) {
    return PyBytes_FromStringAndSize((const char *)r->done_hist, HIST_BINS * sizeof(uint32_t));
}

/* latency() -> {"done_max_ns", "over_ns", "over", "loss_events"}; loss_events() -> bytes of
 * LossEvent records (the first LOSS_LOG) */
static PyObject *Reader_latency(Reader *r, PyObject *Py_UNUSED(ignored)) {
    return Py_BuildValue("{s:L,s:L,s:K,s:K}", "done_max_ns", (long long)r->done_max_ns,
                         "over_ns", (long long)r->over_ns, "over", (unsigned long long)r->n_over,
                         "loss_events", (unsigned long long)r->n_loss_events);
}

static PyObject *Reader_loss_events(Reader *r, PyObject *Py_UNUSED(ignored)) {
    uint64_t n = atomic_load_explicit(&r->n_loss_events, memory_order_acquire);
    if (n > LOSS_LOG) n = LOSS_LOG;
    return PyBytes_FromStringAndSize((const char *)r->loss_log, (Py_ssize_t)(n * sizeof(LossEvent)));
}

static PyMethodDef Reader_methods[] = {
    {"start", (PyCFunction)Reader_start, METH_NOARGS, "open the backend and start the thread"},
    {"stop", (PyCFunction)Reader_stop, METH_NOARGS, "stop the thread (fds stay open)"},
    {"close", (PyCFunction)Reader_close, METH_NOARGS, "stop the thread, close the backend"},
    {"set_guard_ns", (PyCFunction)Reader_set_guard_ns, METH_VARARGS,
     "set_guard_ns(ns): reads ending later than ns before the next edge are late (stopped only)"},
    {"drain", (PyCFunction)Reader_drain, METH_VARARGS,
     "drain(max_frames, timeout_s) -> (raw, seq, drdy_ns) bytes"},
    {"counts", (PyCFunction)Reader_counts, METH_NOARGS, "counters (see module docs)"},
    {"info", (PyCFunction)Reader_info, METH_NOARGS, "backend, scheduling, last error"},
    {"cost_hist", (PyCFunction)Reader_cost_hist, METH_NOARGS, "per-sample cost histogram"},
    {"wake_hist", (PyCFunction)Reader_wake_hist, METH_NOARGS, "edge-to-wake latency histogram"},
    {"done_hist", (PyCFunction)Reader_done_hist, METH_NOARGS, "edge-to-read-done histogram"},
    {"latency", (PyCFunction)Reader_latency, METH_NOARGS, "read-done max, count over, losses"},
    {"loss_events", (PyCFunction)Reader_loss_events, METH_NOARGS, "LossEvent records as bytes"},
    {NULL, NULL, 0, NULL}};

static PyTypeObject ReaderType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "appliance.frontend.ads1299._reader.Reader",
    .tp_basicsize = sizeof(Reader),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = Reader_new,
    .tp_dealloc = (destructor)Reader_dealloc,
    .tp_methods = Reader_methods,
    .tp_doc = "Compiled ADS1299 reader thread with a SPSC ring (see compiled.py)",
};

/* ---- the model for the Python read loop ----------------------------------------------- */

typedef struct {
    PyObject_HEAD
    ChipModel m;
} Model;

static PyObject *Model_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"n_chips", "frame_bytes", "rate_hz", "sclk_hz", "trigger_period",
                             "trigger_width", "spin_us", NULL};
    int n_chips = 1, frame_bytes = 27;
    double rate_hz = 4000, sclk_hz = 4e6, spin_us = 0;
    long trig_period = 0, trig_width = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|iiddlld", kwlist, &n_chips, &frame_bytes,
                                     &rate_hz, &sclk_hz, &trig_period, &trig_width, &spin_us))
        return NULL;
    Model *self = (Model *)type->tp_alloc(type, 0);
    if (self && model_init(&self->m, n_chips, frame_bytes, rate_hz, sclk_hz, trig_period,
                           trig_width, 0.0)) {
        Py_DECREF(self);
        return NULL;
    }
    if (self) self->m.spin_ns = (int64_t)(spin_us * 1e3);
    return (PyObject *)self;
}

static PyObject *Model_start(Model *self, PyObject *Py_UNUSED(ignored)) {
    model_start(&self->m);
    Py_RETURN_NONE;
}

/* wait(timeout_s) -> (seqno, timestamp_ns) of the newest edge, or None on timeout */
static PyObject *Model_wait(Model *self, PyObject *args) {
    double timeout_s;
    if (!PyArg_ParseTuple(args, "d", &timeout_s)) return NULL;
    int64_t seqno = 0, ts = 0;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    prctl(PR_SET_TIMERSLACK, 1UL); /* as in reader_loop: the wake stands for an interrupt */
    rc = model_wait(&self->m, (int)(timeout_s * 1000), &seqno, &ts);
    Py_END_ALLOW_THREADS
    if (!rc) Py_RETURN_NONE;
    return Py_BuildValue("(LL)", (long long)seqno, (long long)ts);
}

/* xfer(chip, n) -> bytes clocked out of `chip` (bus time charged, GIL released meanwhile) */
static PyObject *Model_xfer(Model *self, PyObject *args) {
    int chip, n;
    if (!PyArg_ParseTuple(args, "ii", &chip, &n)) return NULL;
    if (chip < 0 || chip >= self->m.n_chips || n < 0 || n > 4096) {
        PyErr_Format(PyExc_ValueError, "ADS1299 model: chip %d of %d, %d bytes (0..4096)", chip,
                     self->m.n_chips, n);
        return NULL;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, n);
    if (!out) return NULL;
    uint8_t *rx = (uint8_t *)PyBytes_AS_STRING(out);
    Py_BEGIN_ALLOW_THREADS
    model_xfer(&self->m, chip, rx, n);
    Py_END_ALLOW_THREADS
    return out;
}

static PyMethodDef Model_methods[] = {
    {"start", (PyCFunction)Model_start, METH_NOARGS, "conversion 0 is ready 1 ms from now"},
    {"wait", (PyCFunction)Model_wait, METH_VARARGS, "newest DRDY edge (seqno, ts_ns) or None"},
    {"xfer", (PyCFunction)Model_xfer, METH_VARARGS, "one transfer of n bytes from a chip"},
    {NULL, NULL, 0, NULL}};

static PyTypeObject ModelType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "appliance.frontend.ads1299._reader.Model",
    .tp_basicsize = sizeof(Model),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = Model_new,
    .tp_methods = Model_methods,
    .tp_doc = "The C chip model behind a Python DRDY/SPI surface (see compiled.py)",
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_reader",
                                    "Compiled ADS1299 reader and chip model", -1, NULL};

PyMODINIT_FUNC PyInit__reader(void) {
    if (PyType_Ready(&ReaderType) < 0 || PyType_Ready(&ModelType) < 0) return NULL;
    PyObject *mod = PyModule_Create(&module);
    if (!mod) return NULL;
    Py_INCREF(&ReaderType);
    Py_INCREF(&ModelType);
    if (PyModule_AddObject(mod, "Reader", (PyObject *)&ReaderType) < 0 ||
        PyModule_AddObject(mod, "Model", (PyObject *)&ModelType) < 0 ||
        PyModule_AddIntConstant(mod, "HIST_BIN_NS", HIST_BIN_NS) < 0) {
        Py_DECREF(mod);
        return NULL;
    }
    return mod;
}
