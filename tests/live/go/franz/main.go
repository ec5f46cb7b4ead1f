// franz-go (github.com/twmb/franz-go v1.22.3) as an app runs it, for the live client
// matrix (tests/live/envoy_client_matrix.rs). Like tests/live/java/JavaClients.java, every
// figure it prints is what the client itself saw acknowledged or delivered, one line per
// topic, for the test to hold the filter's counts against:
//
//	create   <bootstrap> <partitions> <topic>...   (CreateTopics through kmsg, replication 1;
//	         the broker answers once the controller created them; no Metadata names them)
//	produce  <bootstrap> <topic> <records> none|gzip|snappy|lz4|zstd
//	         -> "acked <topic> <n>" (franz-go's default producer: idempotent, acks=all;
//	            every record's promise waited for)
//	consume  <bootstrap> <group> <expected> <topic>...
//	         -> "consumed <topic> <n>" once <expected> records arrived (or 90 s passed)
//
// KIOSK_FRANZ_LOG=debug|info|warn|error logs the client's own lines to stderr (the test
// keeps them in each command's log). scripts/setup.sh builds it into
// $KIOSK_CACHE/franz-1.22.3/franz.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func main() {
	if len(os.Args) < 2 {
		fail(errors.New("usage: franz create|produce|consume ..."))
	}
	args := os.Args[2:]
	var err error
	switch os.Args[1] {
	case "create":
		if len(args) < 3 {
			fail(errors.New("usage: franz create <bootstrap> <partitions> <topic>..."))
		}
		err = create(args[0], atoi(args[1]), args[2:])
	case "produce":
		if len(args) != 4 {
			fail(errors.New("usage: franz produce <bootstrap> <topic> <records> <codec>"))
		}
		err = produce(args[0], args[1], atoi(args[2]), args[3])
	case "consume":
		if len(args) < 4 {
			fail(errors.New("usage: franz consume <bootstrap> <group> <expected> <topic>..."))
		}
		err = consume(args[0], args[1], atoi(args[2]), args[3:])
	default:
		err = fmt.Errorf("unknown command %s", os.Args[1])
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "franz:", err)
	os.Exit(1)
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		fail(err)
	}
	return n
}

func client(bootstrap string, opts ...kgo.Opt) (*kgo.Client, error) {
	opts = append([]kgo.Opt{
		kgo.SeedBrokers(strings.Split(bootstrap, ",")...),
		kgo.ClientID("kiosk-franz"),
	}, opts...)
	if level := os.Getenv("KIOSK_FRANZ_LOG"); level != "" {
		levels := map[string]kgo.LogLevel{
			"debug": kgo.LogLevelDebug, "info": kgo.LogLevelInfo,
			"warn": kgo.LogLevelWarn, "error": kgo.LogLevelError,
		}
		l, ok := levels[level]
		if !ok {
			return nil, fmt.Errorf("KIOSK_FRANZ_LOG=%s: debug, info, warn or error", level)
		}
		opts = append(opts, kgo.WithLogger(kgo.BasicLogger(os.Stderr, l, func() string {
			return time.Now().Format("15:04:05.000000 ")
		})))
	}
	return kgo.NewClient(opts...)
}

func create(bootstrap string, partitions int, topics []string) error {
	cl, err := client(bootstrap)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 30000
	for _, t := range topics {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic = t
		rt.NumPartitions = int32(partitions)
		rt.ReplicationFactor = 1
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	for _, t := range resp.Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("create %s: %w", t.Topic, err)
		}
	}
	// No Metadata naming the topics here (franz-go's controller lookup names none): the
	// sidecar first learns each topic's id from the producer's own Metadata, as it does
	// for an app, so a producer that sends Produce (by id) on a connection the other worker
	// serves meets an id that worker has not learned itself.
	return nil
}

func codec(name string) (kgo.CompressionCodec, error) {
	switch name {
	case "none":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.NoCompression(), fmt.Errorf("codec %s", name)
}

// value is compressible, but not trivially: a counter inside repeated text, about 200
// bytes (as JavaClients.value).
func value(topic string, i int) []byte {
	s := fmt.Sprintf("record %d of %s", i, topic)
	return []byte(strings.Repeat("0", max(0, 200-len(s))) + s)
}

func produce(bootstrap, topic string, records int, codecName string) error {
	c, err := codec(codecName)
	if err != nil {
		return err
	}
	// The default producer: idempotent, acks=all; only the codec and a linger set.
	cl, err := client(bootstrap,
		kgo.ProducerBatchCompression(c),
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.DefaultProduceTopic(topic),
	)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var acked atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for i := 0; i < records; i++ {
		wg.Add(1)
		r := &kgo.Record{Key: []byte(fmt.Sprintf("key-%d", i)), Value: value(topic, i)}
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				return
			}
			acked.Add(1)
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	wg.Wait()
	fmt.Printf("acked %s %d\n", topic, acked.Load())
	return firstErr
}

func consume(bootstrap, group string, expected int, topics []string) error {
	cl, err := client(bootstrap,
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
	)
	if err != nil {
		return err
	}
	got := map[string]int{}
	for _, t := range topics {
		got[t] = 0
	}
	total := 0
	poll := func(d time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		fetches := cl.PollFetches(ctx)
		var ferr error
		fetches.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) && ferr == nil {
				ferr = fmt.Errorf("fetch %s/%d: %w", t, p, err)
			}
		})
		fetches.EachRecord(func(r *kgo.Record) {
			got[r.Topic]++
			total++
		})
		return ferr
	}
	deadline := time.Now().Add(90 * time.Second)
	for total < expected && time.Now().Before(deadline) {
		if err := poll(200 * time.Millisecond); err != nil {
			cl.Close()
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	err = cl.CommitUncommittedOffsets(ctx)
	cancel()
	if err != nil {
		cl.Close()
		return err
	}
	// Keep fetching at the end for a moment: a record beyond <expected> would show.
	idle := time.Now().Add(2 * time.Second)
	for time.Now().Before(idle) {
		if err := poll(100 * time.Millisecond); err != nil {
			cl.Close()
			return err
		}
	}
	cl.Close()
	names := make([]string, 0, len(got))
	for t := range got {
		names = append(names, t)
	}
	sort.Strings(names)
	for _, t := range names {
		fmt.Printf("consumed %s %d\n", t, got[t])
	}
	return nil
}
