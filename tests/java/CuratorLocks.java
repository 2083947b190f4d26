/*
 * Apache Curator 5.4's lock and leader recipes, driven over stdin/stdout by the
 * interop tests (one command per line, one answer line each; a failed command answers
 * ERROR <exception class> <message>).
 *
 *   java CuratorLocks <connect string>      -> READY <session id in hex>
 *   acquire <path> <ms>                     -> ACQUIRED true|false  (InterProcessMutex)
 *   release <path>                          -> RELEASED
 *   count <lock path> <counter path> <n>    -> COUNTING, later COUNTED <n>: n increments of
 *                                              the counter node (decimal text), each under
 *                                              the mutex, on a thread of their own
 *   read-acquire|write-acquire <path> <ms>  -> ACQUIRED true|false  (InterProcessReadWriteLock)
 *   read-release|write-release <path>       -> RELEASED
 *   lease <path> <max> <ms>                 -> LEASE <node name>|none (InterProcessSemaphoreV2)
 *   return <node name>                      -> RETURNED
 *   latch-start <path> <id>                 -> STARTED  (LeaderLatch; its listener prints
 *                                              EVENT is_leader / EVENT not_leader)
 *   latch-leads <path>                      -> LEADS true|false
 *   latch-close <path>                      -> CLOSED
 *   quit                                    -> BYE (and exits)
 */
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.leader.LeaderLatchListener;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.framework.recipes.locks.InterProcessReadWriteLock;
import org.apache.curator.framework.recipes.locks.InterProcessSemaphoreV2;
import org.apache.curator.framework.recipes.locks.Lease;
import org.apache.curator.retry.RetryNTimes;

public class CuratorLocks {
    static final Map<String, InterProcessMutex> mutexes = new HashMap<>();
    static final Map<String, InterProcessReadWriteLock> rwLocks = new HashMap<>();
    static final Map<String, InterProcessSemaphoreV2> semaphores = new HashMap<>();
    static final Map<String, Lease> leases = new HashMap<>();
    static final Map<String, LeaderLatch> latches = new HashMap<>();

    static synchronized void say(String line) {
        System.out.println(line);
        System.out.flush();
    }

    public static void main(String[] args) throws Exception {
        CuratorFramework client = CuratorFrameworkFactory.newClient(
            args[0], 10000, 5000, new RetryNTimes(10, 200));
        client.start();
        if (!client.blockUntilConnected(30, TimeUnit.SECONDS)) {
            say("ERROR not connected to " + args[0]);
            System.exit(2);
        }
        say("READY " + Long.toHexString(client.getZookeeperClient().getZooKeeper().getSessionId()));
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        String line;
        while ((line = in.readLine()) != null) {
            String[] word = line.trim().split(" ");
            if (word[0].equals("quit")) {
                say("BYE");
                break;
            }
            try {
                run(client, word);
            } catch (Exception e) {
                say("ERROR " + e.getClass().getName() + " " + e.getMessage());
            }
        }
        client.close();
    }

    static void run(CuratorFramework client, String[] word) throws Exception {
        switch (word[0]) {
            case "acquire":
                say("ACQUIRED " + mutexes.computeIfAbsent(word[1], p -> new InterProcessMutex(client, p))
                    .acquire(Long.parseLong(word[2]), TimeUnit.MILLISECONDS));
                break;
            case "release":
                mutexes.get(word[1]).release();
                say("RELEASED");
                break;
            case "count": {
                String lockPath = word[1];
                String counterPath = word[2];
                int rounds = Integer.parseInt(word[3]);
                Thread counter = new Thread(() -> {
                    InterProcessMutex mutex = new InterProcessMutex(client, lockPath);
                    try {
                        for (int i = 0; i < rounds; i++) {
                            mutex.acquire();
                            try {
                                String text = new String(client.getData().forPath(counterPath), StandardCharsets.US_ASCII);
                                Thread.sleep(1);
                                long next = Long.parseLong(text.isEmpty() ? "0" : text) + 1;
                                client.setData().forPath(counterPath, Long.toString(next).getBytes(StandardCharsets.US_ASCII));
                            } finally {
                                mutex.release();
                            }
                        }
                        say("COUNTED " + rounds);
                    } catch (Exception e) {
                        say("ERROR " + e.getClass().getName() + " " + e.getMessage());
                    }
                });
                counter.start();
                say("COUNTING");
                break;
            }
            case "read-acquire":
                say("ACQUIRED " + rw(client, word[1]).readLock().acquire(Long.parseLong(word[2]), TimeUnit.MILLISECONDS));
                break;
            case "write-acquire":
                say("ACQUIRED " + rw(client, word[1]).writeLock().acquire(Long.parseLong(word[2]), TimeUnit.MILLISECONDS));
                break;
            case "read-release":
                rw(client, word[1]).readLock().release();
                say("RELEASED");
                break;
            case "write-release":
                rw(client, word[1]).writeLock().release();
                say("RELEASED");
                break;
            case "lease": {
                InterProcessSemaphoreV2 semaphore = semaphores.computeIfAbsent(
                    word[1], p -> new InterProcessSemaphoreV2(client, p, Integer.parseInt(word[2])));
                Lease lease = semaphore.acquire(Long.parseLong(word[3]), TimeUnit.MILLISECONDS);
                if (lease == null) {
                    say("LEASE none");
                } else {
                    leases.put(lease.getNodeName(), lease);
                    say("LEASE " + lease.getNodeName());
                }
                break;
            }
            case "return":
                leases.remove(word[1]).close();
                say("RETURNED");
                break;
            case "latch-start": {
                LeaderLatch latch = new LeaderLatch(client, word[1], word[2]);
                latch.addListener(new LeaderLatchListener() {
                    public void isLeader() { say("EVENT is_leader"); }
                    public void notLeader() { say("EVENT not_leader"); }
                });
                latches.put(word[1], latch);
                latch.start();
                say("STARTED");
                break;
            }
            case "latch-leads":
            {
                LeaderLatch latch = latches.get(word[1]);
                say("LEADS " + (latch != null && latch.hasLeadership()));
                break;
            }
            case "latch-close":
                latches.remove(word[1]).close();
                say("CLOSED");
                break;
            default:
                say("ERROR unknown command " + word[0]);
        }
    }

    static InterProcessReadWriteLock rw(CuratorFramework client, String path) {
        return rwLocks.computeIfAbsent(path, p -> new InterProcessReadWriteLock(client, p));
    }
}
