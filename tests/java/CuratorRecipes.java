/*
 * Apache Curator 5.4's recipes driven over stdin/stdout by the interop tests (one
 * command per line, one answer line each; a failure answers ERROR <what>).
 *
 *   java CuratorRecipes <connect string>          -> READY
 *   count-start <path> <seed>                       -> COUNT <n>
 *   count-set <path> <n>                            -> COUNT <n>
 *   count-await <path> <n> <timeout ms>             -> COUNT <n>  (once the watch saw it)
 *   long-add <path> <delta>                         -> LONG <succeeded> <pre> <post>
 *   long-get <path>                                 -> LONG <succeeded> <pre> <post>
 *   barrier-set <path> / barrier-remove <path>      -> BARRIER
 *   queue-put <path> <text>                         -> PUT
 *   queue-consume <path> <count> <timeout ms>       -> ITEMS <text,text,...>
 *   simple-offer <path> <text>                      -> OFFERED
 *   simple-poll <path> <timeout ms>                 -> POLLED <text or ->
 *   double-enter <path> <qty> <timeout ms>          -> ENTERED <true|false>
 *   double-leave <path> <timeout ms>                -> LEFT <true|false>
 *   pqueue-put <path> <text> <priority>             -> PUT
 *   pqueue-consume <path> <count> <timeout ms>      -> ITEMS <text,text,...>
 */
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.atomic.AtomicValue;
import org.apache.curator.framework.recipes.atomic.DistributedAtomicLong;
import org.apache.curator.framework.recipes.barriers.DistributedBarrier;
import org.apache.curator.framework.recipes.barriers.DistributedDoubleBarrier;
import org.apache.curator.framework.recipes.queue.DistributedPriorityQueue;
import org.apache.curator.framework.recipes.queue.DistributedQueue;
import org.apache.curator.framework.recipes.queue.QueueBuilder;
import org.apache.curator.framework.recipes.queue.QueueConsumer;
import org.apache.curator.framework.recipes.queue.QueueSerializer;
import org.apache.curator.framework.recipes.queue.SimpleDistributedQueue;
import org.apache.curator.framework.recipes.shared.SharedCount;
import org.apache.curator.framework.state.ConnectionState;
import org.apache.curator.retry.RetryNTimes;

public class CuratorRecipes {
    static final QueueSerializer<String> TEXT = new QueueSerializer<String>() {
        public byte[] serialize(String item) { return item.getBytes(StandardCharsets.UTF_8); }
        public String deserialize(byte[] bytes) { return new String(bytes, StandardCharsets.UTF_8); }
    };

    static CuratorFramework client;
    static final Map<String, SharedCount> counts = new HashMap<>();
    static final Map<String, DistributedDoubleBarrier> doubles = new HashMap<>();

    public static void main(String[] args) throws Exception {
        client = CuratorFrameworkFactory.newClient(args[0], 10000, 5000, new RetryNTimes(10, 200));
        client.start();
        if (!client.blockUntilConnected(30, TimeUnit.SECONDS)) {
            System.out.println("ERROR not connected to " + args[0]);
            System.exit(2);
        }
        System.out.println("READY");
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        String line;
        while ((line = in.readLine()) != null) {
            String[] word = line.trim().split(" ");
            if (word[0].equals("quit")) {
                break;
            }
            try {
                System.out.println(run(word));
            } catch (Exception e) {
                System.out.println("ERROR " + e.getClass().getSimpleName() + " " + e.getMessage());
            }
        }
        for (SharedCount count : counts.values()) {
            count.close();
        }
        client.close();
        System.out.println("BYE");
    }

    static String longResult(AtomicValue<Long> value) {
        return "LONG " + value.succeeded() + " " + value.preValue() + " " + value.postValue();
    }

    static String run(String[] word) throws Exception {
        switch (word[0]) {
            case "count-start": {
                SharedCount count = new SharedCount(client, word[1], Integer.parseInt(word[2]));
                count.start();
                counts.put(word[1], count);
                return "COUNT " + count.getCount();
            }
            case "count-set": {
                SharedCount count = counts.get(word[1]);
                count.setCount(Integer.parseInt(word[2]));
                return "COUNT " + count.getCount();
            }
            case "count-await": {
                SharedCount count = counts.get(word[1]);
                int wanted = Integer.parseInt(word[2]);
                long deadline = System.currentTimeMillis() + Long.parseLong(word[3]);
                while (count.getCount() != wanted && System.currentTimeMillis() < deadline) {
                    Thread.sleep(10);
                }
                return count.getCount() == wanted ? "COUNT " + wanted : "ERROR count is " + count.getCount();
            }
            case "long-add":
                return longResult(new DistributedAtomicLong(client, word[1], new RetryNTimes(100, 10))
                    .add(Long.parseLong(word[2])));
            case "long-get":
                return longResult(new DistributedAtomicLong(client, word[1], new RetryNTimes(100, 10)).get());
            case "barrier-set":
                new DistributedBarrier(client, word[1]).setBarrier();
                return "BARRIER";
            case "barrier-remove":
                new DistributedBarrier(client, word[1]).removeBarrier();
                return "BARRIER";
            case "queue-put": {
                DistributedQueue<String> queue = QueueBuilder.builder(client, null, TEXT, word[1]).buildQueue();
                queue.start();
                queue.put(word[2]);
                queue.close();
                return "PUT";
            }
            case "queue-consume": {
                int wanted = Integer.parseInt(word[2]);
                LinkedBlockingQueue<String> got = new LinkedBlockingQueue<>();
                QueueConsumer<String> consumer = new QueueConsumer<String>() {
                    public void consumeMessage(String message) { got.add(message); }
                    public void stateChanged(CuratorFramework c, ConnectionState s) {}
                };
                DistributedQueue<String> queue = QueueBuilder.builder(client, consumer, TEXT, word[1]).buildQueue();
                queue.start();
                List<String> items = new ArrayList<>();
                long deadline = System.currentTimeMillis() + Long.parseLong(word[3]);
                while (items.size() < wanted && System.currentTimeMillis() < deadline) {
                    String item = got.poll(50, TimeUnit.MILLISECONDS);
                    if (item != null) {
                        items.add(item);
                    }
                }
                queue.close();
                return "ITEMS " + String.join(",", items);
            }
            case "simple-offer":
                new SimpleDistributedQueue(client, word[1]).offer(word[2].getBytes(StandardCharsets.UTF_8));
                return "OFFERED";
            case "simple-poll": {
                byte[] data = new SimpleDistributedQueue(client, word[1]).poll(Long.parseLong(word[2]), TimeUnit.MILLISECONDS);
                return "POLLED " + (data == null ? "-" : new String(data, StandardCharsets.UTF_8));
            }
            case "double-enter": {
                DistributedDoubleBarrier barrier = new DistributedDoubleBarrier(client, word[1], Integer.parseInt(word[2]));
                doubles.put(word[1], barrier);
                return "ENTERED " + barrier.enter(Long.parseLong(word[3]), TimeUnit.MILLISECONDS);
            }
            case "double-leave":
                return "LEFT " + doubles.get(word[1]).leave(Long.parseLong(word[2]), TimeUnit.MILLISECONDS);
            case "pqueue-put": {
                DistributedPriorityQueue<String> queue = QueueBuilder.builder(client, null, TEXT, word[1]).buildPriorityQueue(0);
                queue.start();
                queue.put(word[2], Integer.parseInt(word[3]));
                queue.close();
                return "PUT";
            }
            case "pqueue-consume": {
                int wanted = Integer.parseInt(word[2]);
                LinkedBlockingQueue<String> got = new LinkedBlockingQueue<>();
                QueueConsumer<String> consumer = new QueueConsumer<String>() {
                    public void consumeMessage(String message) { got.add(message); }
                    public void stateChanged(CuratorFramework c, ConnectionState s) {}
                };
                DistributedPriorityQueue<String> queue = QueueBuilder.builder(client, consumer, TEXT, word[1]).buildPriorityQueue(0);
                queue.start();
                List<String> items = new ArrayList<>();
                long deadline = System.currentTimeMillis() + Long.parseLong(word[3]);
                while (items.size() < wanted && System.currentTimeMillis() < deadline) {
                    String item = got.poll(50, TimeUnit.MILLISECONDS);
                    if (item != null) {
                        items.add(item);
                    }
                }
                queue.close();
                return "ITEMS " + String.join(",", items);
            }
            default:
                return "ERROR unknown command " + word[0];
        }
    }
}
