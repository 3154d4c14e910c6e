package dev.tidemark.minidfs;

import java.io.File;
import java.io.IOException;
import java.io.InputStream;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.hdfs.MiniDFSCluster;

/**
 * Starts a single-NameNode, single-DataNode HDFS MiniDFSCluster for tidemark's integration tests.
 *
 * <p>Usage: {@code java -jar tidemark-minidfs.jar <namenode-port> <base-dir>}. Every port other than
 * the NameNode RPC port is ephemeral and bound to 127.0.0.1. When the cluster is active the launcher
 * prints one line {@code READY hdfs://127.0.0.1:<port>} on stdout. It stays up until its stdin
 * reaches end-of-file (the test harness closes it, or dies) or the process is killed, then shuts the
 * cluster down.
 */
public final class MiniDfsLauncher {
  private MiniDfsLauncher() {}

  public static void main(String[] args) throws Exception {
    if (args.length != 2) {
      System.err.println("usage: tidemark-minidfs <namenode-port> <base-dir>");
      System.exit(2);
    }
    int port = Integer.parseInt(args[0]);
    File baseDir = new File(args[1]);

    Configuration conf = new Configuration();
    conf.set(MiniDFSCluster.HDFS_MINIDFS_BASEDIR, baseDir.getAbsolutePath());
    conf.set("dfs.namenode.http-address", "127.0.0.1:0");
    conf.set("dfs.namenode.https-address", "127.0.0.1:0");
    conf.set("dfs.namenode.secondary.http-address", "127.0.0.1:0");
    conf.set("dfs.datanode.address", "127.0.0.1:0");
    conf.set("dfs.datanode.http.address", "127.0.0.1:0");
    conf.set("dfs.datanode.ipc.address", "127.0.0.1:0");
    conf.setBoolean("dfs.permissions.enabled", false);
    conf.setInt("dfs.replication", 1);
    // Small blocks keep multi-block files cheap to test.
    conf.setLong("dfs.blocksize", 4L * 1024 * 1024);
    conf.setLong("dfs.namenode.fs-limits.min-block-size", 64L * 1024);

    MiniDFSCluster cluster =
        new MiniDFSCluster.Builder(conf, baseDir)
            .nameNodePort(port)
            .nameNodeHttpPort(0)
            .numDataNodes(1)
            .format(true)
            .build();
    cluster.waitActive();
    Runtime.getRuntime().addShutdownHook(new Thread(cluster::shutdown));

    System.out.println("READY hdfs://127.0.0.1:" + cluster.getNameNodePort());
    System.out.flush();

    waitForStdinEof(System.in);
    cluster.shutdown();
    System.exit(0);
  }

  private static void waitForStdinEof(InputStream in) {
    byte[] buf = new byte[256];
    try {
      while (in.read(buf) >= 0) {
        // Ignore input; only end-of-file matters.
      }
    } catch (IOException e) {
      // A broken stdin means the harness is gone: shut down.
    }
  }
}
