/* The libzmq side of the benchmark: libzmq's four perf tools in one binary,
 * with the argument order and output lines of `zeroguard perf`, so either
 * side of a pair can be swapped for the other.
 *
 *   libzmq_peer local-thr|remote-thr|local-lat|remote-lat ENDPOINT SIZE COUNT [--curve]
 *
 * --curve uses the benchmark's fixed test keys (server admits any client). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

static const char *server_secret = "ch-%0GFib@UNhvDj2UV{0l)6AWGKgu8X#a8uZu+H";
static const char *client_secret = "kuDi$r^.{iQVG3Jpw-{N/E+mQMI)bdB8>)hgfe{=";

static double seconds (void)
{
    struct timespec t;
    clock_gettime (CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void fail (const char *what)
{
    fprintf (stderr, "libzmq_peer: %s: %s\n", what, zmq_strerror (zmq_errno ()));
    exit (2);
}

static void secure (void *socket, int server)
{
    char server_public[41];
    if (zmq_curve_public (server_public, server_secret) != 0)
        fail ("curve");
    if (server) {
        int one = 1;
        zmq_setsockopt (socket, ZMQ_CURVE_SERVER, &one, sizeof one);
        zmq_setsockopt (socket, ZMQ_CURVE_SECRETKEY, server_secret, 40);
    } else {
        char client_public[41];
        zmq_curve_public (client_public, client_secret);
        zmq_setsockopt (socket, ZMQ_CURVE_SERVERKEY, server_public, 40);
        zmq_setsockopt (socket, ZMQ_CURVE_PUBLICKEY, client_public, 40);
        zmq_setsockopt (socket, ZMQ_CURVE_SECRETKEY, client_secret, 40);
    }
}

static void receive_sized (void *socket, zmq_msg_t *msg, size_t size)
{
    if (zmq_msg_recv (msg, socket, 0) < 0)
        fail ("recv");
    if (zmq_msg_size (msg) != size) {
        fprintf (stderr, "libzmq_peer: message of the wrong size\n");
        exit (2);
    }
}

int main (int argc, char **argv)
{
    if (argc < 5) {
        fprintf (stderr, "usage: libzmq_peer TOOL ENDPOINT SIZE COUNT [--curve]\n");
        return 1;
    }
    const char *tool = argv[1], *endpoint = argv[2];
    size_t size = strtoul (argv[3], NULL, 10);
    long count = strtol (argv[4], NULL, 10);
    int curve = argc > 5 && strcmp (argv[5], "--curve") == 0;
    void *ctx = zmq_ctx_new ();
    void *socket = NULL;
    zmq_msg_t msg;

    if (strcmp (tool, "local-thr") == 0) {
        socket = zmq_socket (ctx, ZMQ_PULL);
        if (curve)
            secure (socket, 1);
        if (zmq_bind (socket, endpoint) != 0)
            fail ("bind");
        zmq_msg_init (&msg);
        receive_sized (socket, &msg, size);
        double start = seconds ();
        for (long i = 1; i < count; i++)
            receive_sized (socket, &msg, size);
        double elapsed = seconds () - start;
        double throughput = count / (elapsed > 0 ? elapsed : 1e-9);
        printf ("message size: %zu [B]\nmessage count: %ld\n", size, count);
        printf ("mean throughput: %.0f [msg/s]\n", throughput);
        printf ("mean throughput: %.3f [Mb/s]\n", throughput * size * 8 / 1e6);
        zmq_msg_close (&msg);
    } else if (strcmp (tool, "remote-thr") == 0) {
        socket = zmq_socket (ctx, ZMQ_PUSH);
        if (curve)
            secure (socket, 0);
        if (zmq_connect (socket, endpoint) != 0)
            fail ("connect");
        for (long i = 0; i < count; i++) {
            zmq_msg_init_size (&msg, size);
            memset (zmq_msg_data (&msg), 0, size);
            if (zmq_msg_send (&msg, socket, 0) < 0)
                fail ("send");
        }
    } else if (strcmp (tool, "local-lat") == 0) {
        socket = zmq_socket (ctx, ZMQ_REP);
        if (curve)
            secure (socket, 1);
        if (zmq_bind (socket, endpoint) != 0)
            fail ("bind");
        zmq_msg_init (&msg);
        for (long i = 0; i < count; i++) {
            receive_sized (socket, &msg, size);
            if (zmq_msg_send (&msg, socket, 0) < 0)
                fail ("send");
        }
        zmq_msg_close (&msg);
    } else if (strcmp (tool, "remote-lat") == 0) {
        socket = zmq_socket (ctx, ZMQ_REQ);
        if (curve)
            secure (socket, 0);
        if (zmq_connect (socket, endpoint) != 0)
            fail ("connect");
        zmq_msg_init_size (&msg, size);
        memset (zmq_msg_data (&msg), 0, size);
        double start = seconds ();
        for (long i = 0; i < count; i++) {
            if (zmq_msg_send (&msg, socket, 0) < 0)
                fail ("send");
            receive_sized (socket, &msg, size);
        }
        double elapsed = seconds () - start;
        printf ("message size: %zu [B]\nroundtrip count: %ld\n", size, count);
        printf ("average latency: %.3f [us]\n", elapsed * 1e6 / (2.0 * count));
        zmq_msg_close (&msg);
    } else {
        fprintf (stderr, "libzmq_peer: unknown tool %s\n", tool);
        return 1;
    }
    zmq_close (socket);
    zmq_ctx_term (ctx);
    return 0;
}
