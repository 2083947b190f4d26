/*
 * Apache Curator 5.4's curator-x-discovery, driven over stdin/stdout by the discovery
 * interop tests: one command per line, one answer line each.  Text arguments travel
 * as hex ("-" for null).
 *
 *   java DiscoveryInterop <connect string> <base path>             -> READY
 *   register <name> <id> <address> <port> <sslPort> <type> <uriSpec> <payload JSON> <time>
 *                            register with ServiceDiscovery -> REGISTERED
 *   unregister <name> <id>   -> UNREGISTERED
 *   get <name> <id>          queryForInstance -> INSTANCE <JSON of every field> | INSTANCE null
 *   cache <name>             start a ServiceCache -> CACHING
 *   cached <name>            -> IDS <sorted ids, comma-separated>
 *   quit                     -> BYE
 * The JSON of "get" holds name, id, address, port, sslPort, payload, registrationTimeUTC,
 * serviceType, enabled and uri (buildUriSpec()).  A failed command answers ERROR ...
 */
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.retry.RetryNTimes;
import org.apache.curator.x.discovery.ServiceCache;
import org.apache.curator.x.discovery.ServiceDiscovery;
import org.apache.curator.x.discovery.ServiceDiscoveryBuilder;
import org.apache.curator.x.discovery.ServiceInstance;
import org.apache.curator.x.discovery.ServiceType;
import org.apache.curator.x.discovery.UriSpec;
import org.apache.curator.x.discovery.details.JsonInstanceSerializer;

public class DiscoveryInterop {
    static final ObjectMapper json = new ObjectMapper();
    static final Map<String, ServiceInstance<Map>> registered = new HashMap<>();
    static final Map<String, ServiceCache<Map>> caches = new HashMap<>();

    static String text(String hex) {
        return hex.equals("-") ? null : new String(HexFormat.of().parseHex(hex), StandardCharsets.UTF_8);
    }

    static Integer number(String word) {
        return word.equals("-") ? null : Integer.valueOf(word);
    }

    public static void main(String[] args) throws Exception {
        CuratorFramework client = CuratorFrameworkFactory.newClient(
            args[0], 10000, 5000, new RetryNTimes(10, 200));
        client.start();
        if (!client.blockUntilConnected(30, TimeUnit.SECONDS)) {
            System.out.println("ERROR not connected to " + args[0]);
            System.exit(2);
        }
        ServiceDiscovery<Map> discovery = ServiceDiscoveryBuilder.builder(Map.class)
            .client(client).basePath(args[1])
            .serializer(new JsonInstanceSerializer<>(Map.class)).build();
        discovery.start();
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
                run(discovery, word);
            } catch (Exception e) {
                System.out.println("ERROR " + e.getClass().getSimpleName() + " " + e.getMessage());
            }
        }
        for (ServiceCache<Map> cache : caches.values()) {
            cache.close();
        }
        discovery.close();
        client.close();
    }

    @SuppressWarnings("unchecked")
    static void run(ServiceDiscovery<Map> discovery, String[] word) throws Exception {
        switch (word[0]) {
            case "register": {
                String spec = text(word[7]);
                String payload = text(word[8]);
                ServiceInstance<Map> instance = new ServiceInstance<Map>(
                    text(word[1]), text(word[2]), text(word[3]), number(word[4]), number(word[5]),
                    payload == null ? null : json.readValue(payload, LinkedHashMap.class),
                    Long.parseLong(word[9]), ServiceType.valueOf(word[6]),
                    spec == null ? null : new UriSpec(spec));
                discovery.registerService(instance);
                registered.put(instance.getId(), instance);
                System.out.println("REGISTERED");
                break;
            }
            case "unregister":
                discovery.unregisterService(registered.remove(text(word[2])));
                System.out.println("UNREGISTERED");
                break;
            case "get": {
                ServiceInstance<Map> found = discovery.queryForInstance(text(word[1]), text(word[2]));
                if (found == null) {
                    System.out.println("INSTANCE null");
                    break;
                }
                Map<String, Object> fields = new LinkedHashMap<>();
                fields.put("name", found.getName());
                fields.put("id", found.getId());
                fields.put("address", found.getAddress());
                fields.put("port", found.getPort());
                fields.put("sslPort", found.getSslPort());
                fields.put("payload", found.getPayload());
                fields.put("registrationTimeUTC", found.getRegistrationTimeUTC());
                fields.put("serviceType", found.getServiceType().name());
                fields.put("enabled", found.isEnabled());
                fields.put("uri", found.buildUriSpec());
                System.out.println("INSTANCE " + json.writeValueAsString(fields));
                break;
            }
            case "cache": {
                ServiceCache<Map> cache = discovery.serviceCacheBuilder().name(text(word[1])).build();
                cache.start();
                caches.put(text(word[1]), cache);
                System.out.println("CACHING");
                break;
            }
            case "cached": {
                List<String> ids = new ArrayList<>();
                for (ServiceInstance<Map> instance : caches.get(text(word[1])).getInstances()) {
                    ids.add(instance.getId());
                }
                Collections.sort(ids);
                System.out.println("IDS " + String.join(",", ids));
                break;
            }
            default:
                System.out.println("ERROR unknown command " + word[0]);
        }
    }
}
