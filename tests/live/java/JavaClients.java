// The reference Kafka client (kafka-clients 4.3.1, from the Kafka libraries scripts/setup.sh
// resolved) as an app runs it, for the live client matrix (tests/live/envoy_java_clients.rs).
// Every figure it prints is what the client itself saw acknowledged or delivered, one line
// per topic, for the test to hold the filter's counts against:
//
//   create   <bootstrap> <partitions> <topic>...
//   produce  <bootstrap> <topic> <records> <compression> plain|idempotent|transactional
//            -> "acked <topic> <n>"; transactional: <records> committed in transactions of
//               100, then one transaction of ABORTED records aborted: "aborted <topic> <n>"
//   consume  <bootstrap> <group> read_committed|read_uncommitted <expected> <topic>...
//            -> "consumed <topic> <n>" once <expected> records arrived (or 90 s passed)
//   share    <bootstrap> <group> <expected> <topic>  (a KafkaShareConsumer, KIP-932,
//            explicit acknowledgement: every 10th record rejected, every 10th + 3 released
//            on its first delivery and accepted when delivered again, the rest accepted)
//            -> "delivered|accepted|released|rejected <topic> <n>" once <expected>
//               records were accepted or rejected (or 90 s passed)
import java.time.Duration;
import java.util.*;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.serialization.*;

public class JavaClients {
    static final int ABORTED = 25;

    public static void main(String[] args) throws Exception {
        switch (args[0]) {
            case "create" -> create(args[1], Integer.parseInt(args[2]), Arrays.copyOfRange(args, 3, args.length));
            case "produce" -> produce(args[1], args[2], Integer.parseInt(args[3]), args[4], args[5]);
            case "consume" -> consume(args[1], args[2], args[3], Integer.parseInt(args[4]), Arrays.copyOfRange(args, 5, args.length));
            case "share" -> share(args[1], args[2], Integer.parseInt(args[3]), args[4]);
            default -> throw new IllegalArgumentException("unknown command " + args[0]);
        }
    }

    static Properties common(String bootstrap) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("client.id", "kiosk-java");
        return p;
    }

    static void create(String bootstrap, int partitions, String[] topics) throws Exception {
        try (Admin admin = Admin.create(common(bootstrap))) {
            for (String t : topics) {
                try {
                    admin.createTopics(List.of(new NewTopic(t, partitions, (short) 1))).all().get();
                } catch (java.util.concurrent.ExecutionException e) {
                    if (!(e.getCause() instanceof TopicExistsException)) throw e;
                }
            }
        }
    }

    static void produce(String bootstrap, String topic, int records, String compression, String mode) throws Exception {
        Properties p = common(bootstrap);
        p.put("key.serializer", StringSerializer.class.getName());
        p.put("value.serializer", StringSerializer.class.getName());
        p.put("compression.type", compression);
        p.put("linger.ms", "5");
        switch (mode) {
            case "plain" -> { p.put("enable.idempotence", "false"); p.put("acks", "1"); }
            case "idempotent" -> { p.put("enable.idempotence", "true"); p.put("acks", "all"); }
            case "transactional" -> p.put("transactional.id", "kiosk-java-" + topic);
            default -> throw new IllegalArgumentException("mode " + mode);
        }
        int acked = 0;
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
            boolean tx = mode.equals("transactional");
            if (tx) producer.initTransactions();
            List<java.util.concurrent.Future<RecordMetadata>> sent = new ArrayList<>();
            for (int i = 0; i < records; i++) {
                if (tx && i % 100 == 0) producer.beginTransaction();
                sent.add(producer.send(new ProducerRecord<>(topic, "key-" + i, value(topic, i))));
                if (tx && (i % 100 == 99 || i == records - 1)) producer.commitTransaction();
            }
            producer.flush();
            for (var f : sent) { f.get(); acked++; }
            System.out.println("acked " + topic + " " + acked);
            if (tx) {
                producer.beginTransaction();
                List<java.util.concurrent.Future<RecordMetadata>> doomed = new ArrayList<>();
                for (int i = 0; i < ABORTED; i++) {
                    doomed.add(producer.send(new ProducerRecord<>(topic, "aborted-" + i, value(topic, i))));
                }
                producer.flush();
                for (var f : doomed) f.get();
                producer.abortTransaction();
                System.out.println("aborted " + topic + " " + ABORTED);
            }
        }
    }

    /// Compressible, but not trivially: a counter inside repeated text, about 200 bytes.
    static String value(String topic, int i) {
        String s = "record " + i + " of " + topic;
        return "0".repeat(Math.max(0, 200 - s.length())) + s;
    }

    static void consume(String bootstrap, String group, String isolation, int expected, String[] topics) {
        Properties p = common(bootstrap);
        p.put("group.id", group);
        p.put("auto.offset.reset", "earliest");
        p.put("isolation.level", isolation);
        p.put("key.deserializer", StringDeserializer.class.getName());
        p.put("value.deserializer", StringDeserializer.class.getName());
        Map<String, Integer> got = new TreeMap<>();
        for (String t : topics) got.put(t, 0);
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(p)) {
            consumer.subscribe(List.of(topics));
            long deadline = System.nanoTime() + Duration.ofSeconds(90).toNanos();
            int total = 0;
            while (total < expected && System.nanoTime() < deadline) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
                    got.merge(r.topic(), 1, Integer::sum);
                    total++;
                }
            }
            consumer.commitSync();
            // Keep fetching at the end for a moment: a record beyond `expected` would show.
            long idle = System.nanoTime() + Duration.ofSeconds(2).toNanos();
            while (System.nanoTime() < idle) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(100))) {
                    got.merge(r.topic(), 1, Integer::sum);
                }
            }
        }
        got.forEach((t, n) -> System.out.println("consumed " + t + " " + n));
    }

    static void share(String bootstrap, String group, int expected, String topic) throws Exception {
        // A share group starts at the log's end unless its group config says otherwise.
        try (Admin admin = Admin.create(common(bootstrap))) {
            ConfigResource resource = new ConfigResource(ConfigResource.Type.GROUP, group);
            AlterConfigOp earliest = new AlterConfigOp(
                new org.apache.kafka.clients.admin.ConfigEntry("share.auto.offset.reset", "earliest"),
                AlterConfigOp.OpType.SET);
            admin.incrementalAlterConfigs(Map.of(resource, List.of(earliest))).all().get();
        }
        Properties p = common(bootstrap);
        p.put("group.id", group);
        p.put("share.acknowledgement.mode", "explicit");
        p.put("key.deserializer", StringDeserializer.class.getName());
        p.put("value.deserializer", StringDeserializer.class.getName());
        int delivered = 0, accepted = 0, released = 0, rejected = 0;
        try (KafkaShareConsumer<String, String> consumer = new KafkaShareConsumer<>(p)) {
            consumer.subscribe(List.of(topic));
            long deadline = System.nanoTime() + Duration.ofSeconds(90).toNanos();
            while (accepted + rejected < expected && System.nanoTime() < deadline) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
                    delivered++;
                    int i = Integer.parseInt(r.key().substring(r.key().lastIndexOf('-') + 1));
                    AcknowledgeType type;
                    if (i % 10 == 0) type = AcknowledgeType.REJECT;
                    else if (i % 10 == 3 && r.deliveryCount().orElse((short) 1) == 1) type = AcknowledgeType.RELEASE;
                    else type = AcknowledgeType.ACCEPT;
                    consumer.acknowledge(r, type);
                    switch (type) {
                        case ACCEPT -> accepted++;
                        case RELEASE -> released++;
                        case REJECT -> rejected++;
                        default -> { }
                    }
                }
                consumer.commitSync();
            }
        }
        System.out.println("delivered " + topic + " " + delivered);
        System.out.println("accepted " + topic + " " + accepted);
        System.out.println("released " + topic + " " + released);
        System.out.println("rejected " + topic + " " + rejected);
    }
}
