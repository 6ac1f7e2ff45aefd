// Command pprof-target is the real Go peer of pprof-scraper's tests: a process
// serving net/http/pprof whose every profile type has samples, because tests
// and fixtures must see what a real Go service serves, not a hand-made protobuf.
//
// It prints exactly one line to stdout, "listening on <host:port>", once the
// listener is bound, so a test that asked for port 0 learns the real one.
// SIGTERM and SIGINT shut it down cleanly (exit status 0).
package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to serve /debug/pprof on")
	work := flag.Int("work", 1, "scale of the background work (goroutines, live heap, contention)")
	allocSites := flag.Int("allocsites", 0, "allocate from this many distinct call stacks, so heap and allocs profiles have about as many samples; turns on full allocation sampling (MemProfileRate=1)")
	flag.Parse()
	if *work < 1 {
		fmt.Fprintln(os.Stderr, "pprof-target: -work must be at least 1, got", *work)
		os.Exit(2)
	}
	if *allocSites < 0 {
		fmt.Fprintln(os.Stderr, "pprof-target: -allocsites must not be negative, got", *allocSites)
		os.Exit(2)
	}
	if *allocSites > 0 {
		// At Go's default rate (one sample per 512 KiB) most small allocations
		// are never recorded, so thousands of distinct sites would show up as a
		// few dozen samples. Set before the work starts, as the runtime asks.
		runtime.MemProfileRate = 1
	}
	// Off by default in Go: without these the block and mutex profiles are empty.
	runtime.SetBlockProfileRate(1)
	runtime.SetMutexProfileFraction(1)

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(os.Stderr, "pprof-target: listen on %s: %v\n", *listen, err)
		os.Exit(1)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	startWork(ctx, *work, *allocSites)

	srv := &http.Server{Handler: http.DefaultServeMux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	// os.Stdout is unbuffered in Go: the line is written by this one call, so a
	// reader waiting for it never sees half of it or waits on a buffer.
	if _, err := fmt.Fprintf(os.Stdout, "listening on %s\n", ln.Addr().String()); err != nil {
		fmt.Fprintln(os.Stderr, "pprof-target: write to stdout:", err)
		os.Exit(1)
	}

	select {
	case <-ctx.Done():
	case err := <-served:
		fmt.Fprintln(os.Stderr, "pprof-target: serve:", err)
		os.Exit(1)
	}
	// A CPU profile in flight may hold a request for its full seconds; cut it
	// short rather than make the test that stops us wait.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		fmt.Fprintln(os.Stderr, "pprof-target: shutdown:", err)
	}
	_ = srv.Close()
}

// startWork starts the background load; each kind feeds one profile type.
func startWork(ctx context.Context, work, allocSites int) {
	for i := 0; i < 4*work; i++ {
		go parkedOnChannel(ctx)
		go parkedInSelect(ctx)
	}
	go keepLiveHeap(ctx, work)
	go churnAllocations(ctx, work)
	var mu sync.Mutex
	var shared [64]uint64
	for i := 0; i < 2+2*work; i++ {
		go contendMutex(ctx, &mu, &shared, i)
	}
	var rw sync.RWMutex
	go contendRWMutex(ctx, &rw, true)
	for i := 0; i < 2*work; i++ {
		go contendRWMutex(ctx, &rw, false)
	}
	for i := 0; i < work; i++ {
		go blockOnChannels(ctx)
		go burnCPU(ctx)
	}
	if allocSites > 0 {
		go allocFromManySites(ctx, allocSites)
	}
}

// parkedOnChannel and parkedInSelect give the goroutine profile stacks that
// are not the runtime's own.
func parkedOnChannel(ctx context.Context) {
	never := make(chan struct{})
	go func() { <-ctx.Done(); close(never) }()
	<-never
}

func parkedInSelect(ctx context.Context) {
	never := make(chan int)
	select {
	case <-never:
	case <-ctx.Done():
	}
}

// keepLiveHeap holds about work × 8 MiB in slots that are replaced over time,
// so the heap profile's inuse values stay non-zero.
func keepLiveHeap(ctx context.Context, work int) {
	slots := make([][]byte, 512*work)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for n := 0; ; n++ {
		for j := 0; j < 16; j++ {
			k := (n*16 + j) % len(slots)
			slots[k] = make([]byte, 16<<10)
			slots[k][0] = byte(n)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Package-level sinks make the allocations escape to the heap (a slice that
// stays local may live on the stack); one sink per writing goroutine.
var churnSink, sitesSink []byte

// churnAllocations allocates short-lived objects of several shapes for the
// allocs profile (alloc_space) and to keep the GC cycling, which is when the
// runtime publishes new heap profile data.
func churnAllocations(ctx context.Context, work int) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for n := 0; ; n++ {
		for j := 0; j < 64*work; j++ {
			churnSink = make([]byte, 1<<10+j)
			m := make(map[string]int, 8)
			m[strconv.Itoa(j)] = n
			churnSink = append(churnSink, strconv.Itoa(len(m))...)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// contendMutex makes goroutines queue on one mutex; with a fraction of 1 the
// runtime records every contended Unlock in the mutex profile, and the wait
// in Lock in the block profile. Two update functions and a RWMutex give the
// profiles more than one stack.
func contendMutex(ctx context.Context, mu *sync.Mutex, shared *[64]uint64, id int) {
	for n := 0; ctx.Err() == nil; n++ {
		if n%2 == 0 {
			updateEven(mu, shared, id+n)
		} else {
			updateOdd(mu, shared, id+n)
		}
		time.Sleep(time.Millisecond)
	}
}

//go:noinline
func updateEven(mu *sync.Mutex, shared *[64]uint64, v int) {
	mu.Lock()
	defer mu.Unlock()
	for j := 0; j < len(shared); j += 2 {
		shared[j] += uint64(v)
	}
	time.Sleep(200 * time.Microsecond)
}

//go:noinline
func updateOdd(mu *sync.Mutex, shared *[64]uint64, v int) {
	mu.Lock()
	defer mu.Unlock()
	for j := 1; j < len(shared); j += 2 {
		shared[j] += uint64(v)
	}
	time.Sleep(200 * time.Microsecond)
}

func contendRWMutex(ctx context.Context, rw *sync.RWMutex, writer bool) {
	for ctx.Err() == nil {
		if writer {
			rw.Lock()
			time.Sleep(500 * time.Microsecond)
			rw.Unlock()
		} else {
			rw.RLock()
			time.Sleep(300 * time.Microsecond)
			rw.RUnlock()
		}
		time.Sleep(time.Millisecond)
	}
}

// blockOnChannels makes senders wait on a slow receiver, which the block
// profile records as chan send (and select) delays.
func blockOnChannels(ctx context.Context) {
	ch := make(chan int)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-ch:
				time.Sleep(2 * time.Millisecond)
			}
		}
	}()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case ch <- n:
		}
	}
}

// burnCPU hashes for about a third of each 30 ms, so a 2 s CPU profile has
// dozens of samples without taking a core away from the tests.
func burnCPU(ctx context.Context) {
	buf := make([]byte, 4<<10)
	for ctx.Err() == nil {
		deadline := time.Now().Add(10 * time.Millisecond)
		for time.Now().Before(deadline) {
			sum := sha256.Sum256(buf)
			buf[int(sum[0])*16%len(buf)] ^= sum[1]
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// allocFromManySites allocates once from each of n distinct call stacks, and
// again every second so the sites stay in recent GC cycles. A stack is a path
// of hexDepth(n) calls through sixteen distinct functions, chosen by the
// digits of the site number: distinct paths are distinct stacks, and the
// depth stays far under the 32 frames the runtime records.
func allocFromManySites(ctx context.Context, n int) {
	depth := hexDepth(n)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		for site := 0; site < n; site++ {
			sitesSink = descend(uint32(site), depth)
		}
		runtime.GC()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func hexDepth(n int) int {
	depth := 1
	for capacity := 16; capacity < n; capacity *= 16 {
		depth++
	}
	return depth
}

//go:noinline
func descend(path uint32, depth int) []byte {
	if depth == 0 {
		return make([]byte, 64)
	}
	next, d := path>>4, depth-1
	// One call site per digit: the return address in this frame is what makes
	// two paths' stacks differ.
	switch path & 15 {
	case 0:
		return step0(next, d)
	case 1:
		return step1(next, d)
	case 2:
		return step2(next, d)
	case 3:
		return step3(next, d)
	case 4:
		return step4(next, d)
	case 5:
		return step5(next, d)
	case 6:
		return step6(next, d)
	case 7:
		return step7(next, d)
	case 8:
		return step8(next, d)
	case 9:
		return step9(next, d)
	case 10:
		return step10(next, d)
	case 11:
		return step11(next, d)
	case 12:
		return step12(next, d)
	case 13:
		return step13(next, d)
	case 14:
		return step14(next, d)
	default:
		return step15(next, d)
	}
}

//go:noinline
func step0(p uint32, d int) []byte { return descend(p, d) }

//go:noinline
func step1(p uint32, d int) []byte { return descend(p, d) }

//go:noinline
func step2(p uint32, d int) []byte { return descend(p, d) }

//go:noinline
func step3(p uint32, d int) []byte { return descend(p, d) }

//go:noinline
func step4(p uint32, d int) []byte { return descend(p, d) }

//go:noinline
func step5(p uint32, d int) []byte { return descend(p, d) }

//go:noinline
func step6(p uint32, d int) []byte { return descend(p, d) }

//go:noinline
func step7(p uint32, d int) []byte { return descend(p, d) }

//go:noinline
func step8(p uint32, d int) []byte { return descend(p, d) }

//go:noinline
func step9(p uint32, d int) []byte { return descend(p, d) }

//go:noinline
func step10(p uint32, d int) []byte { return descend(p, d) }

//go:noinline
func step11(p uint32, d int) []byte { return descend(p, d) }

//go:noinline
func step12(p uint32, d int) []byte { return descend(p, d) }

//go:noinline
func step13(p uint32, d int) []byte { return descend(p, d) }

//go:noinline
func step14(p uint32, d int) []byte { return descend(p, d) }

//go:noinline
func step15(p uint32, d int) []byte { return descend(p, d) }
