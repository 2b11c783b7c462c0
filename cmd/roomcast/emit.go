package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/roomcast/roomcast/adapter"
)

// usageError is a mistake on the command line: main exits with code 2.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// emit publishes one event through the Redis backplane, as an emitter.
func emit(args []string) error {
	fs := flag.NewFlagSet("roomcast emit", flag.ContinueOnError)
	backplane := fs.String("adapter", adapter.BackplaneRedis, "adapter of the nodes: redis, redis-sharded, redis-streams, nats, nats-jetstream or kafka")
	url := fs.String("redis-url", "redis://127.0.0.1:6379/0", "Redis of the backplane")
	prefix := fs.String("redis-prefix", "socket.io", "channel prefix of the backplane")
	natsURL := fs.String("nats-url", "nats://127.0.0.1:4222", "NATS of the nats adapters, several servers separated by commas")
	natsPrefix := fs.String("nats-prefix", adapter.DefaultNATSPrefix, "subject prefix of the nats adapters")
	kafkaBrokers := fs.String("kafka-brokers", "127.0.0.1:9092", "Kafka seed brokers of the kafka adapter, host:port separated by commas")
	kafkaPrefix := fs.String("kafka-topic-prefix", adapter.DefaultKafkaPrefix, "topic prefix of the kafka adapter")
	nsp := fs.String("namespace", "/", "namespace")
	rooms := fs.String("room", "", "rooms, comma separated (none: every socket)")
	except := fs.String("except", "", "rooms to skip, comma separated")
	event := fs.String("event", "", "event name (required)")
	data := fs.String("data", "", "JSON argument (none: no argument)")
	if err := parseFlags(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return usageError{err}
	}
	if *event == "" {
		return usageError{errors.New("--event is required")}
	}
	var payload []any
	if *data != "" {
		if !json.Valid([]byte(*data)) {
			return usageError{fmt.Errorf("--data is not valid JSON: %s", *data)}
		}
		payload = append(payload, json.RawMessage(*data))
	}
	cfg := adapter.EmitterConfig{Backplane: *backplane, Prefix: *prefix}
	if *backplane == adapter.BackplaneKafka {
		cl, err := kgo.NewClient(kgo.SeedBrokers(split(*kafkaBrokers)...), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
		if err != nil {
			return usageError{fmt.Errorf("--kafka-brokers: %w", err)}
		}
		defer cl.Close()
		cfg.Kafka, cfg.Prefix = cl, *kafkaPrefix
	} else if strings.HasPrefix(*backplane, "nats") {
		nc, err := nats.Connect(*natsURL, nats.Timeout(5*time.Second))
		if err != nil {
			return fmt.Errorf("--nats-url: %w", err)
		}
		defer nc.Close()
		cfg.NATS, cfg.Prefix = nc, *natsPrefix
	} else {
		opts, err := redis.ParseURL(*url)
		if err != nil {
			return usageError{fmt.Errorf("--redis-url: %w", err)}
		}
		cfg.Client = redis.NewClient(opts)
		defer cfg.Client.Close()
	}
	e, err := adapter.NewEmitterWith(cfg)
	if err != nil {
		return usageError{fmt.Errorf("--adapter: %w", err)}
	}
	e = e.Of(*nsp).To(split(*rooms)...).Except(split(*except)...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return e.Emit(ctx, *event, payload...)
}

func split(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
