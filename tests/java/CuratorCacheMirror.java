/*
 * Apache Curator 5.4's CuratorCache, driven over stdin/stdout by the cache interop
 * tests: one command per line, one answer line each.  Data travels as hex ("-" for
 * empty).
 *
 *   java CuratorCacheMirror <connect string>      -> READY
 *   cache <path>            start a CuratorCache, wait for it to initialize -> CACHING <size>
 *   dump                    -> NODES <path>=<hex>:<czxid>:<mzxid>;... (sorted by path)
 *   events                  -> EVENTS <count of listener events so far>
 *   converge <size> <sum>   wait until the cache holds <size> nodes whose data versions
 *                           add up to <sum> (bench/cache.py) -> CONVERGED
 *   create <path> <hex>     (parents as containers) -> CREATED <path>
 *   set <path> <hex>        -> SET <version>
 *   delete <path>           (children first) -> DELETED
 *   quit                    -> BYE
 * A failed command answers ERROR <exception class> <message>.
 */
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.util.HexFormat;
import java.util.TreeMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.cache.ChildData;
import org.apache.curator.framework.recipes.cache.CuratorCache;
import org.apache.curator.framework.recipes.cache.CuratorCacheListener;
import org.apache.curator.retry.RetryNTimes;

public class CuratorCacheMirror {
    static CuratorCache cache;
    static final AtomicLong events = new AtomicLong();

    static byte[] bytes(String hex) {
        return hex.equals("-") ? new byte[0] : HexFormat.of().parseHex(hex);
    }

    static String hex(byte[] data) {
        return data == null || data.length == 0 ? "-" : HexFormat.of().formatHex(data);
    }

    public static void main(String[] args) throws Exception {
        CuratorFramework client = CuratorFrameworkFactory.newClient(
            args[0], 10000, 5000, new RetryNTimes(10, 200));
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
                System.out.println("BYE");
                break;
            }
            try {
                run(client, word);
            } catch (Exception e) {
                System.out.println("ERROR " + e.getClass().getSimpleName() + " " + e.getMessage());
            }
        }
        if (cache != null) {
            cache.close();
        }
        client.close();
    }

    static void run(CuratorFramework client, String[] word) throws Exception {
        switch (word[0]) {
            case "cache": {
                CountDownLatch initialized = new CountDownLatch(1);
                cache = CuratorCache.build(client, word[1]);
                cache.listenable().addListener(new CuratorCacheListener() {
                    public void event(Type type, ChildData oldData, ChildData data) {
                        events.incrementAndGet();
                    }

                    public void initialized() {
                        initialized.countDown();
                    }
                });
                cache.start();
                if (!initialized.await(30, TimeUnit.SECONDS)) {
                    System.out.println("ERROR not initialized");
                    return;
                }
                System.out.println("CACHING " + cache.size());
                break;
            }
            case "dump": {
                TreeMap<String, String> nodes = new TreeMap<>();
                cache.stream().forEach(node -> nodes.put(node.getPath(),
                    hex(node.getData()) + ":" + node.getStat().getCzxid() + ":" + node.getStat().getMzxid()));
                StringBuilder out = new StringBuilder();
                nodes.forEach((path, value) -> out.append(path).append('=').append(value).append(';'));
                System.out.println("NODES " + out);
                break;
            }
            case "converge": {
                int size = Integer.parseInt(word[1]);
                long sum = Long.parseLong(word[2]);
                while (cache.size() != size
                        || cache.stream().mapToLong(node -> node.getStat().getVersion()).sum() != sum) {
                    Thread.sleep(1);
                }
                System.out.println("CONVERGED");
                break;
            }
            case "events":
                System.out.println("EVENTS " + events.get());
                break;
            case "create":
                System.out.println("CREATED " + client.create().creatingParentContainersIfNeeded()
                    .forPath(word[1], bytes(word[2])));
                break;
            case "set":
                System.out.println("SET " + client.setData().forPath(word[1], bytes(word[2])).getVersion());
                break;
            case "delete":
                client.delete().deletingChildrenIfNeeded().forPath(word[1]);
                System.out.println("DELETED");
                break;
            default:
                System.out.println("ERROR unknown command " + word[0]);
        }
    }
}
