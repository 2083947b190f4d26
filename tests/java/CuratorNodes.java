/*
 * A Curator 5.4 client driven over stdin/stdout by the interop tests: one command per
 * line, one answer line each.  Data travels as hex ("-" for empty).
 *
 *   java CuratorNodes <connect string> [command words...]
 *   -> READY <session id in hex>
 * With a command on the command line, it runs that one command and exits (status 1
 * when it failed); it exits with status 2 when it cannot connect within 30 s.
 *   create <path> <hex>    -> CREATED <path>
 *   get <path>             -> DATA <hex>
 *   set <path> <hex>       -> SET <version>
 *   delete <path>          -> DELETED
 *   children <path>        -> CHILDREN <name,name,...>
 *   quit                   -> BYE (and exits)
 * A failed command answers ERROR <exception class> <message>.
 */
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.util.Arrays;
import java.util.Collections;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.retry.RetryNTimes;

public class CuratorNodes {
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
        System.out.println("READY " + Long.toHexString(client.getZookeeperClient().getZooKeeper().getSessionId()));
        if (args.length > 1) {
            String[] word = Arrays.copyOfRange(args, 1, args.length);
            boolean ok = run(client, word);
            client.close();
            System.exit(ok ? 0 : 1);
        }
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        String line;
        while ((line = in.readLine()) != null) {
            if (line.trim().equals("quit")) {
                System.out.println("BYE");
                break;
            }
            run(client, line.trim().split(" "));
        }
        client.close();
    }

    static boolean run(CuratorFramework client, String[] word) {
            try {
                switch (word[0]) {
                    case "create":
                        System.out.println("CREATED " + client.create().creatingParentContainersIfNeeded()
                            .forPath(word[1], bytes(word[2])));
                        break;
                    case "get":
                        System.out.println("DATA " + hex(client.getData().forPath(word[1])));
                        break;
                    case "set":
                        System.out.println("SET " + client.setData().forPath(word[1], bytes(word[2])).getVersion());
                        break;
                    case "delete":
                        client.delete().forPath(word[1]);
                        System.out.println("DELETED");
                        break;
                    case "children":
                        List<String> names = client.getChildren().forPath(word[1]);
                        Collections.sort(names);
                        System.out.println("CHILDREN " + String.join(",", names));
                        break;
                    default:
                        System.out.println("ERROR unknown command " + word[0]);
                        return false;
                }
                return true;
            } catch (Exception e) {
                System.out.println("ERROR " + e.getClass().getSimpleName() + " " + e.getMessage());
                return false;
            }
    }
}
