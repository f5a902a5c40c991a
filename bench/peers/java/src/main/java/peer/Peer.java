package peer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ThreadLocalRandom;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.errors.WakeupException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * Benchmark peer: the same job as mcm-bridge (Kafka shop messages to the MCM User Event API), the
 * way a Java shop would write it, written for this benchmark:
 *
 * <ul>
 *   <li>a kafka-clients {@link KafkaConsumer} poll loop, auto-commit off;
 *   <li>each record mapped with Jackson and POSTed with {@code java.net.http.HttpClient},
 *       synchronously, one at a time (one request in flight), to
 *       {base}/rmp/event/v1/platforms/{platform}/userevents;
 *   <li>3 attempts in total, start delay 100 ms plus 0-99 ms jitter, doubling, on any error
 *       (network or any non-2xx), as the Node.js and Python peers do (Moloco's Java reference
 *       connector has the same policy with 4 attempts); after the last attempt the record is
 *       logged and skipped;
 *   <li>{@code commitSync()} after each poll batch has been sent, so it is at-least-once.
 * </ul>
 *
 * <p>The mapping mirrors bench/peers/node/peer.js field for field (same output as the bridge's
 * shop.events rules; a regex instead of full user-agent parsing; nulls stripped before sending, as
 * Moloco's connectors do). HTTP/1.1 is pinned: the sink is plain http, where the JDK client's
 * default (HTTP/2) would only add an h2c upgrade attempt. Configuration comes from the
 * environment: BROKERS, TOPIC, GROUP, MCM_BASE_URL, MCM_PLATFORM_ID, MCM_API_KEY.
 */
public final class Peer {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Map<String, String> CHANNELS =
      Map.of("web", "SITE", "ios", "APP", "android", "APP");
  private static final Pattern IOS = Pattern.compile("iPhone OS (\\d+)_(\\d+)");
  private static final Pattern ANDROID = Pattern.compile("Android (\\d+(?:\\.\\d+)*); ([^;)]+)");
  private static final int MAX_ATTEMPTS = 3;

  private Peer() {}

  private static String env(String name) {
    String v = System.getenv(name);
    if (v == null || v.isBlank()) {
      System.err.println("missing " + name);
      System.exit(2);
    }
    return v.trim();
  }

  private static String sha256(String s) {
    try {
      MessageDigest md = MessageDigest.getInstance("SHA-256");
      byte[] d = md.digest(s.strip().toLowerCase(Locale.ROOT).getBytes(StandardCharsets.UTF_8));
      return HexFormat.of().formatHex(d);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every JVM has SHA-256", e);
    }
  }

  private static ObjectNode money(JsonNode cents, JsonNode currency) {
    ObjectNode m = JSON.createObjectNode();
    m.put("amount", cents.asDouble() / 100);
    m.put("currency", currency.asText().toUpperCase(Locale.ROOT));
    return m;
  }

  /** Just enough user-agent parsing for the benchmark's agents: APP events need a mobile OS. */
  private static void deviceOs(String ua, ObjectNode device) {
    Matcher m = IOS.matcher(ua);
    if (m.find()) {
      device.put("os", "iOS").put("os_version", m.group(1) + "." + m.group(2));
      device.put("model", "iPhone");
      return;
    }
    m = ANDROID.matcher(ua);
    if (m.find()) {
      device.put("os", "Android").put("os_version", m.group(1));
      device.put("model", m.group(2).strip());
    }
  }

  /** A shop.events message as an MCM event, or null for kinds the benchmark does not map. */
  static ObjectNode mapEvent(JsonNode m) {
    ObjectNode ev = JSON.createObjectNode();
    ev.set("id", m.get("event_id"));
    ev.put("timestamp", m.path("occurred_at").asLong() * 1000);
    String channel = m.path("channel").asText("").toLowerCase(Locale.ROOT);
    ev.put("channel_type", CHANNELS.getOrDefault(channel, "SITE"));
    String email = m.path("customer").path("email").asText("");
    if (!email.isEmpty()) {
      ev.put("user_id", sha256(email));
    }
    String ua = m.path("user_agent").asText("");
    ObjectNode device = ev.putObject("device");
    deviceOs(ua, device);
    device.set("persistent_id", m.get("device_id"));
    device.set("ua", m.get("user_agent"));

    JsonNode p = m.path("product");
    switch (m.path("kind").asText("")) {
      case "page_view" -> {
        JsonNode page = m.path("page");
        if ("home".equals(page.path("type").asText())) {
          ev.put("event_type", "HOME").put("page_id", "HOME_PAGE");
        } else {
          ev.put("event_type", "PAGE_VIEW").set("page_id", page.get("path"));
        }
      }
      case "product_view" -> {
        String sku = p.get("sku").asText();
        ev.put("event_type", "ITEM_PAGE_VIEW").put("page_id", "PRODUCT_DETAIL_PAGE:" + sku);
        ObjectNode item = ev.putArray("items").addObject();
        item.put("id", sku);
        item.set("seller_id", p.get("seller"));
        item.set("price", money(p.get("price_cents"), p.get("currency")));
      }
      case "cart_add" -> {
        ev.put("event_type", "ADD_TO_CART").put("page_id", "CART_PAGE");
        ObjectNode item = ev.putArray("items").addObject();
        item.put("id", p.get("sku").asText());
        JsonNode q = m.get("quantity");
        if (q == null || q.isNull() || (q.isNumber() && q.asDouble() == 0)) {
          item.put("quantity", 1);
        } else {
          item.set("quantity", q);
        }
        item.set("price", money(p.get("price_cents"), p.get("currency")));
      }
      case "search" -> ev.put("event_type", "SEARCH").put("search_query", m.path("query").asText().strip());
      default -> {
        return null;
      }
    }
    return ev;
  }

  /** Drops null members and null array elements, recursively (as Moloco's connectors do). */
  static JsonNode stripNulls(JsonNode v) {
    if (v.isObject()) {
      ObjectNode o = (ObjectNode) v;
      o.properties().removeIf(e -> e.getValue() == null || e.getValue().isNull());
      o.properties().forEach(e -> stripNulls(e.getValue()));
    } else if (v.isArray()) {
      ArrayNode a = (ArrayNode) v;
      for (int i = a.size() - 1; i >= 0; i--) {
        if (a.get(i).isNull()) {
          a.remove(i);
        } else {
          stripNulls(a.get(i));
        }
      }
    }
    return v;
  }

  private static void send(HttpClient http, HttpRequest.Builder req, byte[] body) throws Exception {
    long delay = 100;
    for (int attempt = 1; ; attempt++) {
      try {
        HttpResponse<String> r =
            http.send(req.POST(HttpRequest.BodyPublishers.ofByteArray(body)).build(),
                HttpResponse.BodyHandlers.ofString());
        if (r.statusCode() / 100 == 2) {
          return;
        }
        if (attempt >= MAX_ATTEMPTS) {
          throw new java.io.IOException("status " + r.statusCode() + ": " + r.body());
        }
      } catch (java.io.IOException e) {
        if (attempt >= MAX_ATTEMPTS) {
          throw e;
        }
      }
      Thread.sleep(delay + ThreadLocalRandom.current().nextInt(100));
      delay *= 2;
    }
  }

  public static void main(String[] args) throws Exception {
    String base = env("MCM_BASE_URL").replaceAll("/+$", "");
    URI url = URI.create(base + "/rmp/event/v1/platforms/" + env("MCM_PLATFORM_ID") + "/userevents");
    String apiKey = env("MCM_API_KEY");
    HttpClient http = HttpClient.newBuilder()
        .version(HttpClient.Version.HTTP_1_1)
        .connectTimeout(Duration.ofSeconds(10))
        .build();
    HttpRequest.Builder request = HttpRequest.newBuilder(url)
        .timeout(Duration.ofSeconds(10))
        .header("Content-Type", "application/json")
        .header("Accept", "application/json")
        .header("X-API-Key", apiKey);

    Properties props = new Properties();
    props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, env("BROKERS"));
    props.put(ConsumerConfig.GROUP_ID_CONFIG, env("GROUP"));
    props.put(ConsumerConfig.CLIENT_ID_CONFIG, "bench-peer-java");
    props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
    props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
    props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());

    KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props);
    Thread mainThread = Thread.currentThread();
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      consumer.wakeup();
      try {
        mainThread.join(10_000);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }));

    long delivered = 0;
    long failed = 0;
    try {
      consumer.subscribe(List.of(env("TOPIC")));
      while (true) {
        ConsumerRecords<byte[], byte[]> records = consumer.poll(Duration.ofMillis(100));
        for (ConsumerRecord<byte[], byte[]> rec : records) {
          ObjectNode event;
          try {
            event = mapEvent(JSON.readTree(rec.value()));
          } catch (Exception e) {
            failed++;
            continue;
          }
          if (event == null) {
            continue;
          }
          try {
            send(http, request, JSON.writeValueAsBytes(stripNulls(event)));
            delivered++;
          } catch (Exception e) {
            if (e instanceof InterruptedException) {
              throw e;
            }
            if (++failed <= 5) {
              System.err.println("delivery failed: " + e.getMessage());
            }
          }
        }
        if (!records.isEmpty()) {
          consumer.commitSync();
        }
      }
    } catch (WakeupException e) {
      // shutdown hook: stop without committing the unfinished batch (at-least-once)
    } finally {
      consumer.close();
      System.err.printf("delivered %d, failed %d%n", delivered, failed);
    }
  }
}
