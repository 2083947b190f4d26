/*
 * The ZooKeeper 3.8 Java client authenticating with SASL DIGEST-MD5 (its JAAS Client
 * section, DigestLoginModule), for the SASL interop tests.  One shot:
 *
 *   java SaslDigestClient <connect string> <jaas file> <path> <user>
 *   -> STATE SaslAuthenticated | STATE AuthFailed   (the client's SASL outcome)
 *   then, when authenticated, it creates <path> readable only by sasl:<user>:
 *   -> DATA <what it read back>
 *   -> ACL <scheme>:<id>
 * It exits with status 2 when no SASL outcome arrives within 30 s.
 */
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooDefs;
import org.apache.zookeeper.ZooKeeper;
import org.apache.zookeeper.data.ACL;
import org.apache.zookeeper.data.Id;

public class SaslDigestClient {
    public static void main(String[] args) throws Exception {
        System.setProperty("java.security.auth.login.config", args[1]);
        String path = args[2];
        CountDownLatch outcome = new CountDownLatch(1);
        String[] state = {"NONE"};
        ZooKeeper zk = new ZooKeeper(args[0], 10000, event -> {
            if (event.getType() != Watcher.Event.EventType.None) {
                return;
            }
            Watcher.Event.KeeperState keeperState = event.getState();
            if (keeperState == Watcher.Event.KeeperState.SaslAuthenticated
                    || keeperState == Watcher.Event.KeeperState.AuthFailed) {
                state[0] = keeperState.name();
                outcome.countDown();
            }
        });
        if (!outcome.await(30, TimeUnit.SECONDS)) {
            System.out.println("TIMEOUT");
            System.exit(2);
        }
        System.out.println("STATE " + state[0]);
        if (state[0].equals("SaslAuthenticated")) {
            List<ACL> acl = new ArrayList<>(List.of(new ACL(ZooDefs.Perms.ALL, new Id("sasl", args[3]))));
            zk.create(path, "java".getBytes(StandardCharsets.UTF_8), acl, CreateMode.PERSISTENT);
            byte[] data = zk.getData(path, false, null);
            System.out.println("DATA " + new String(data, StandardCharsets.UTF_8));
            ACL stored = zk.getACL(path, null).get(0);
            System.out.println("ACL " + stored.getId().getScheme() + ":" + stored.getId().getId());
        }
        System.out.flush();
        zk.close();
    }
}
