package dev.tidemark.kafka;

import java.io.BufferedReader;
import java.io.File;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import kafka.server.KafkaConfig;
import kafka.server.KafkaRaftServer;
import kafka.tools.StorageTool;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.utils.Time;

/**
 * Starts a single-node Apache Kafka 4.4 cluster in KRaft mode (one process that is both broker and
 * controller) for tidemark's integration tests.
 *
 * <p>Usage: {@code java -jar tidemark-kafka.jar <broker-port> <controller-port> <base-dir>}. The
 * broker listens on {@code PLAINTEXT://127.0.0.1:<broker-port>}, the controller quorum (a single
 * voter) on {@code 127.0.0.1:<controller-port>}, and the log directory is {@code <base-dir>/logs},
 * formatted afresh with a random cluster id by the same code {@code kafka-storage.sh format} runs.
 *
 * <p>Once the broker answers an Admin client, the launcher prints one line {@code READY
 * 127.0.0.1:<broker-port>} on stdout. It then reads commands from stdin, one per line, and answers
 * each with one line on stdout:
 *
 * <ul>
 *   <li>{@code create-topic NAME PARTITIONS}: creates a topic with replication factor 1 and waits
 *       until every partition has a leader; answers {@code OK} or {@code ERR <reason>}.
 * </ul>
 *
 * <p>Topics are never created automatically ({@code auto.create.topics.enable=false}), so a test
 * that uses a topic it did not create fails instead of getting a one-partition topic by accident.
 *
 * <p>When stdin reaches end-of-file (the test harness closes it, or dies), or on SIGTERM, the
 * broker is shut down and the process exits. Broker logs go to stderr (slf4j-simple).
 */
public final class KafkaLauncher {
  /** How long one Admin request may take. */
  private static final long ADMIN_TIMEOUT_MS = 60_000;

  private KafkaLauncher() {}

  public static void main(String[] args) {
    if (args.length != 3) {
      System.err.println("usage: tidemark-kafka <broker-port> <controller-port> <base-dir>");
      System.exit(2);
    }
    try {
      run(args);
    } catch (Throwable t) {
      // A broker that failed half-way may have left non-daemon threads: stop the JVM outright, so
      // the harness sees the exit at once and shows this trace from the log.
      System.err.println("tidemark-kafka: start-up failed");
      t.printStackTrace();
      System.err.flush();
      Runtime.getRuntime().halt(1);
    }
  }

  private static void run(String[] args) throws Exception {
    int brokerPort = Integer.parseInt(args[0]);
    int controllerPort = Integer.parseInt(args[1]);
    File baseDir = new File(args[2]).getAbsoluteFile();
    File logDir = new File(baseDir, "logs");
    if (!baseDir.isDirectory() && !baseDir.mkdirs()) {
      throw new IOException("cannot create " + baseDir);
    }

    Properties props = brokerProperties(brokerPort, controllerPort, logDir);
    File configFile = new File(baseDir, "server.properties");
    try (OutputStream out = new FileOutputStream(configFile)) {
      props.store(out, "tidemark test broker");
    }
    format(configFile);

    KafkaRaftServer server = new KafkaRaftServer(KafkaConfig.fromProps(props, false), Time.SYSTEM);
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  server.shutdown();
                  server.awaitShutdown();
                },
                "tidemark-kafka-shutdown"));
    server.startup();

    String bootstrap = "127.0.0.1:" + brokerPort;
    try (Admin admin = Admin.create(adminProperties(bootstrap))) {
      admin.describeCluster().nodes().get(ADMIN_TIMEOUT_MS, TimeUnit.MILLISECONDS);
      System.out.println("READY " + bootstrap);
      System.out.flush();
      serveCommands(admin);
    }
    // The shutdown hook stops the broker.
    System.exit(0);
  }

  /** The broker's configuration: one node, every listener on 127.0.0.1, sized for a small host. */
  static Properties brokerProperties(int brokerPort, int controllerPort, File logDir) {
    Properties p = new Properties();
    p.setProperty("process.roles", "broker,controller");
    p.setProperty("node.id", "1");
    p.setProperty("controller.quorum.voters", "1@127.0.0.1:" + controllerPort);
    p.setProperty(
        "listeners",
        "PLAINTEXT://127.0.0.1:" + brokerPort + ",CONTROLLER://127.0.0.1:" + controllerPort);
    p.setProperty("advertised.listeners", "PLAINTEXT://127.0.0.1:" + brokerPort);
    p.setProperty("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT");
    p.setProperty("controller.listener.names", "CONTROLLER");
    p.setProperty("inter.broker.listener.name", "PLAINTEXT");
    p.setProperty("log.dirs", logDir.getPath());
    p.setProperty("auto.create.topics.enable", "false");
    // A single node can only hold one replica of the internal topics.
    p.setProperty("offsets.topic.replication.factor", "1");
    p.setProperty("offsets.topic.num.partitions", "1");
    p.setProperty("transaction.state.log.replication.factor", "1");
    p.setProperty("transaction.state.log.min.isr", "1");
    p.setProperty("transaction.state.log.num.partitions", "1");
    p.setProperty("share.coordinator.state.topic.replication.factor", "1");
    p.setProperty("share.coordinator.state.topic.min.isr", "1");
    p.setProperty("group.initial.rebalance.delay.ms", "0");
    // Few threads: the test host has two cores and runs other servers.
    p.setProperty("num.network.threads", "2");
    p.setProperty("num.io.threads", "2");
    p.setProperty("background.threads", "2");
    p.setProperty("num.recovery.threads.per.data.dir", "1");
    p.setProperty("num.partitions", "1");
    p.setProperty("default.replication.factor", "1");
    return p;
  }

  /** Formats the log directory with a random cluster id, as {@code kafka-storage.sh format}. */
  private static void format(File configFile) {
    String clusterId = Uuid.randomUuid().toString();
    int code =
        StorageTool.execute(
            new String[] {"format", "-t", clusterId, "-c", configFile.getPath()}, System.err);
    if (code != 0) {
      throw new IllegalStateException("formatting the log directory failed with code " + code);
    }
  }

  private static Properties adminProperties(String bootstrap) {
    Properties p = new Properties();
    p.setProperty(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    p.setProperty(AdminClientConfig.CLIENT_ID_CONFIG, "tidemark-kafka-launcher");
    p.setProperty(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, Long.toString(ADMIN_TIMEOUT_MS));
    return p;
  }

  /** Answers commands from stdin until it reaches end-of-file or breaks. */
  private static void serveCommands(Admin admin) {
    BufferedReader in =
        new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    try {
      String line;
      while ((line = in.readLine()) != null) {
        if (!line.isBlank()) {
          System.out.println(answer(admin, line.trim()));
          System.out.flush();
        }
      }
    } catch (IOException e) {
      // A broken stdin means the harness is gone: shut down.
    }
  }

  /** Runs one command line; the answer is {@code OK} or {@code ERR <reason>} on one line. */
  static String answer(Admin admin, String line) {
    String[] words = line.split("\\s+");
    try {
      if (words.length == 3 && words[0].equals("create-topic")) {
        createTopic(admin, words[1], Integer.parseInt(words[2]));
        return "OK";
      }
      return "ERR unknown command: " + line;
    } catch (ExecutionException e) {
      return err(e.getCause() != null ? e.getCause() : e);
    } catch (Exception e) {
      return err(e);
    }
  }

  private static String err(Throwable e) {
    String message = e.getClass().getSimpleName() + ": " + e.getMessage();
    return "ERR " + message.replace('\n', ' ').replace('\r', ' ');
  }

  /** Creates {@code name} and waits until each of its partitions has a leader. */
  private static void createTopic(Admin admin, String name, int partitions) throws Exception {
    NewTopic topic = new NewTopic(name, partitions, (short) 1);
    admin.createTopics(List.of(topic)).all().get(ADMIN_TIMEOUT_MS, TimeUnit.MILLISECONDS);
    long deadline = System.currentTimeMillis() + ADMIN_TIMEOUT_MS;
    while (!allLed(admin, name, partitions)) {
      if (System.currentTimeMillis() > deadline) {
        throw new IllegalStateException("partitions of " + name + " have no leader yet");
      }
      Thread.sleep(20);
    }
  }

  private static boolean allLed(Admin admin, String name, int partitions) throws Exception {
    Map<String, TopicDescription> described;
    try {
      described =
          admin
              .describeTopics(List.of(name))
              .allTopicNames()
              .get(ADMIN_TIMEOUT_MS, TimeUnit.MILLISECONDS);
    } catch (ExecutionException e) {
      // The broker's metadata may not show the new topic yet.
      return false;
    }
    List<TopicPartitionInfo> infos = described.get(name).partitions();
    return infos.size() == partitions
        && infos.stream().allMatch(info -> info.leader() != null && !info.leader().isEmpty());
  }
}
