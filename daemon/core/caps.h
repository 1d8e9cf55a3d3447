/* caps.h - every hard cap on what the network can make us hold, with why.
 *
 * A buffer filled from the platform never grows past these; a response
 * that would is an error (EFBIG/EIO), not an allocation. */
#ifndef ALTINNFS_CAPS_H
#define ALTINNFS_CAPS_H

/* A JSON response (query page, instance, metadata). A page of 1,000
 * instances with a few data elements each is ~3 MiB; 64 MiB is far above
 * anything real and far below the memory of the machines we run on. */
#define ALT_MAX_JSON_BODY (64u << 20)

/* An error body we keep for messages (ProblemDetails or a bare string). */
#define ALT_MAX_ERROR_BODY (16u << 10)

/* A token file or a bearer token. JWTs from Altinn are ~1-2 KiB. */
#define ALT_MAX_TOKEN (64u << 10)

/* Instances per query page we ask for (the platform's default is 100). */
#define ALT_MAX_PAGE_SIZE 1000

/* Pages followed for one listing before we stop and log: a loop in `next`
 * links must not spin forever (loops of any length are also detected,
 * in api.c). 100,000 pages x 1,000 = 10^8 instances. */
#define ALT_MAX_PAGES 100000

/* Nesting of an instance document we keep. Storage's are about 5 deep;
 * a document nested near jansson's own limit (2048) grows ~700x when
 * pretty-printed for instance.json, so deeper records are skipped. */
#define ALT_MAX_DOC_DEPTH 64

/* One instance document as kept for instance.json (pretty-printed).
 * 10,000 data elements of ~500 bytes each are 5 MiB; a record above this
 * is skipped, so what the network sends cannot make us hold more. */
#define ALT_MAX_INSTANCE_DOC (16u << 20)

/* Instances held by one listing of an app or party (~2 KiB each with
 * their documents: ~400 MiB at the cap). A listing that would pass it
 * fails with EFBIG instead of growing without end; the instance index
 * is how larger apps are listed. */
#define ALT_MAX_LISTED 200000

/* ---- the instance index (daemon/index/, docs/index.md) */
/* Parsed instance documents the index keeps in memory per app (~4 KiB
 * each with their data elements: ~16 MiB at the cap). A listing of one
 * party or a walk down a few instances' folders fits many times over;
 * the rest stays on disk, so the daemon does not grow with the app. */
#define ALT_INDEX_PARSED 4096

/* Seconds before the newest lastChanged seen that a refresh asks again:
 * Storage's servers' clocks may differ by a little, and instances that
 * share one stamp may have come on two pages. What this re-reads is
 * what changed in those seconds, not the app. */
#define ALT_INDEX_OVERLAP_S 10

/* Seconds after the index's thread starts (the first look after a
 * start) before it checks the whole file: a check reads all of it
 * (2 GiB at 10^6 instances), and the listings right after a restart
 * should not share the disk and the page cache with it. SQLite's own
 * corruption errors still count meanwhile. */
#define ALT_INDEX_VERIFY_DELAY_S 30

/* Data elements shown per instance; Altinn apps have far fewer. */
#define ALT_MAX_DATA_ELEMENTS 10000

/* Read-ahead window of a sequential data stream, per open file. The
 * daemon's RSS must not grow with file size: this bounds it. */
#define ALT_STREAM_WINDOW (8u << 20)

/* Open sequential streams at once; further readers use plain range GETs. */
#define ALT_MAX_STREAMS 16

/* ---- the FUSE workers */
/* libfuse's worker threads (max_threads of its multi-threaded loop). A
 * thread costs a stack of address space, not memory, until used. */
#define ALT_FUSE_THREADS 64
/* Operations that may wait on the platform at once (a listing, a data
 * read, a ctl command). Each can hold its worker for up to `timeout`; 32
 * keeps today's parallel readers (bench-read runs 32) unthrottled. */
#define ALT_PLATFORM_OPS 32
/* Such operations waiting for one of those slots, each for up to
 * `timeout`; beyond them an operation fails with EAGAIN at once. Slots +
 * waiters leave ALT_FUSE_THREADS - 48 = 16 workers that the platform can
 * never take, so status.json, README.txt and the local areas answer
 * while it hangs. */
#define ALT_PLATFORM_WAITERS 16
_Static_assert(ALT_PLATFORM_OPS + ALT_PLATFORM_WAITERS < ALT_FUSE_THREADS,
	       "the platform must leave FUSE workers for the local files");

/* A name in a directory (Linux NAME_MAX). */
#define ALT_NAME_MAX 255

/* ---- events */
/* The App API's request size limit: app-lib's InstancesController and
 * DataController have [RequestSizeLimit(2000 MiB)] (REQUEST_SIZE_LIMIT),
 * as has Storage's DataController. A larger file cannot be written. */
#define ALT_MAX_UPLOAD (2000ull << 20)
/* A webhook request body: one CloudEvent. Altinn's are about 1 KiB. */
#define ALT_MAX_EVENT_BODY (1u << 20)
/* An event id we accept (Altinn's are GUIDs, 36 characters). */
#define ALT_MAX_EVENT_ID 256
/* Events asked for per polling page. The app events endpoint has no
 * maximum (altinn-events AppController checks only size < 1); 1000 is
 * the generic /events cap, a page size that keeps one answer small. */
#define ALT_EVENTS_PAGE 1000
/* Event ids remembered per app so that no event makes a second file;
 * older ones are covered by a time watermark. Also the most event files
 * kept per app (events_keep), so every file's id is remembered. */
#define ALT_EVENTS_SEEN 100000

/* ---- broker */
/* broker_tus_threshold's default: from this size a file is uploaded by
 * TUS, resumable, instead of one POST. Below it a crash sends the file
 * again, a few seconds' work; above it a restart resumes from the
 * platform's offset, and no upload stays open long enough for a proxy
 * to cut it (the controller's advice for large files). */
#define ALT_BROKER_TUS_THRESHOLD (64ull << 20)
/* broker_tus_chunk's default: one PATCH. Broker's store holds a whole
 * PATCH in memory before it stores it as a block (BrokerTusStore
 * AppendDataAsync), so a cut PATCH is lost whole: a crash sends at most
 * one chunk again. Each PATCH waits for its answer before the next
 * (one stream, in order), so a chunk pays a round trip and the store's
 * block write: at 8 MiB (Broker's own test client) bench-broker's 1 GiB
 * took 1.8x curl's one POST, at 32 MiB 1.1x. 32 MiB held per upload on
 * the platform, and sent again at most after a crash. */
#define ALT_BROKER_TUS_CHUNK (32ull << 20)
/* Its bounds: below 4 KiB the requests cost more than the bytes; the
 * store reads one PATCH into an array of at most int.MaxValue bytes. */
#define ALT_BROKER_TUS_CHUNK_MIN 4096u
#define ALT_BROKER_TUS_CHUNK_MAX 2147483647ull
/* Times one transfer's TUS upload is made anew after the platform lost
 * it (expired: 24 h without a PATCH, TusOptions.UploadExpiration) before
 * the file goes to failed/: each start sends the whole file again. */
#define ALT_BROKER_TUS_STARTS 3
/* A sidecar <name>.meta.json: propertyList is at most 10 x (50 + 3000)
 * UTF-16 units, each at most 6 bytes as a JSON escape (about 180 KiB),
 * the reference 4096 units (24 KiB), plus the recipients. */
#define ALT_BROKER_META_MAX (256u << 10)
/* Recipients of one transfer: Broker sets no maximum, but each is a row
 * the platform writes and a status the receipt follows; a file for more
 * organisations than this is meant for another channel. Also bounds the
 * journal item that holds them. */
#define ALT_BROKER_MAX_RECIPIENTS 100

/* Transfers a push named that wait for the worker to show them: a
 * burst beyond this is answered 503 and comes again (the platform
 * retries) or by the events poll. Each is a key of ~80 bytes. */
#define ALT_MAX_PUSHED_WAITING 1024

/* ---- correspondence */
/* message.md of one message: Correspondence's body is at most 30,000
 * characters (4 bytes each at most), its title 255. */
#define ALT_CORR_MAX_MARKDOWN (128u << 10)
/* meta.json of one message: a few fields, propertyList <= 10 x 350. */
#define ALT_CORR_MAX_META (64u << 10)
/* Recipients of one message: each is a correspondence (and a request);
 * initialize takes at most 500 per call, and we make one per recipient. */
#define ALT_CORR_MAX_RECIPIENTS 10000

#endif
