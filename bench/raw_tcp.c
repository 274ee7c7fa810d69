/* The ceiling for the 64 KiB benchmark: raw TCP over loopback, 128 KiB
 * writes, one connection.  raw_tcp recv PORT BYTES | raw_tcp send PORT BYTES
 * The receiver prints "raw tcp: N [MB/s]". */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double seconds (void)
{
    struct timespec t;
    clock_gettime (CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main (int argc, char **argv)
{
    if (argc < 4)
        return 1;
    int port = atoi (argv[2]);
    long long total = atoll (argv[3]);
    static char buf[128 * 1024];
    struct sockaddr_in a;
    memset (&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons (port);
    a.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    int s = socket (AF_INET, SOCK_STREAM, 0);
    if (strcmp (argv[1], "recv") == 0) {
        int one = 1;
        setsockopt (s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind (s, (struct sockaddr *) &a, sizeof a) || listen (s, 1))
            return 2;
        int c = accept (s, NULL, NULL);
        long long got = 0;
        double start = 0;
        ssize_t n;
        while ((n = read (c, buf, sizeof buf)) > 0) {
            if (got == 0)
                start = seconds ();
            got += n;
        }
        double elapsed = seconds () - start;
        printf ("raw tcp: %.0f [MB/s]\n", got / elapsed / 1e6);
        return got == total ? 0 : 3;
    }
    if (connect (s, (struct sockaddr *) &a, sizeof a))
        return 2;
    for (long long sent = 0; sent < total;) {
        ssize_t n = write (s, buf, sizeof buf < (size_t) (total - sent) ? sizeof buf : (size_t) (total - sent));
        if (n <= 0)
            return 2;
        sent += n;
    }
    close (s);
    return 0;
}
