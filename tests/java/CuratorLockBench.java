/*
 * Apache Curator 5.4's InterProcessMutex under load, for bench/locks.py:
 *
 *   java CuratorLockBench <connect string> <lock path> <clients> <seconds>
 *   -> RESULT <acquire+release pairs completed by all clients together>
 *
 * Each client is its own CuratorFramework (its own session) on its own thread, looping
 * acquire() / release() on the same path until the time is up.  A warm-up of one
 * second (not counted) lets the JIT and the connections settle.
 */
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.retry.RetryNTimes;

public class CuratorLockBench {
    public static void main(String[] args) throws Exception {
        String hosts = args[0];
        String path = args[1];
        int clients = Integer.parseInt(args[2]);
        long seconds = Long.parseLong(args[3]);
        List<CuratorFramework> frameworks = new ArrayList<>();
        for (int i = 0; i < clients; i++) {
            CuratorFramework client = CuratorFrameworkFactory.newClient(hosts, 10000, 5000, new RetryNTimes(3, 100));
            client.start();
            if (!client.blockUntilConnected(30, TimeUnit.SECONDS)) {
                System.out.println("ERROR not connected");
                System.exit(2);
            }
            frameworks.add(client);
        }
        AtomicLong counted = new AtomicLong();
        long warmUpEnd = System.nanoTime() + TimeUnit.SECONDS.toNanos(1);
        long end = warmUpEnd + TimeUnit.SECONDS.toNanos(seconds);
        List<Thread> threads = new ArrayList<>();
        for (CuratorFramework client : frameworks) {
            Thread thread = new Thread(() -> {
                InterProcessMutex mutex = new InterProcessMutex(client, path);
                try {
                    while (true) {
                        mutex.acquire();
                        mutex.release();
                        long now = System.nanoTime();
                        if (now >= end) {
                            break;
                        }
                        if (now >= warmUpEnd) {
                            counted.incrementAndGet();
                        }
                    }
                } catch (Exception e) {
                    System.out.println("ERROR " + e);
                }
            });
            threads.add(thread);
            thread.start();
        }
        for (Thread thread : threads) {
            thread.join();
        }
        System.out.println("RESULT " + counted.get());
        for (CuratorFramework client : frameworks) {
            client.close();
        }
    }
}
