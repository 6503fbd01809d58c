/* /init's vsock client (scripts/linux-guest.sh): connects to the host (CID 2) on PORT, sends MESSAGE and a newline,
 * prints the host's one-line answer as "VMMSHARP-VSOCK-OK <answer>" (or "VMMSHARP-VSOCK-FAIL <why>") and exits.
 * busybox has no AF_VSOCK, so this is the one thing the initramfs needs besides it. Built static by the script. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>
#include <sys/socket.h>
#include <linux/vm_sockets.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: vsock-hello PORT MESSAGE\n");
        return 2;
    }
    int fd = socket(AF_VSOCK, SOCK_STREAM, 0);
    if (fd < 0) {
        printf("VMMSHARP-VSOCK-FAIL socket: %s\n", strerror(errno));
        return 1;
    }
    struct sockaddr_vm host = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_HOST, .svm_port = (unsigned)atoi(argv[1]) };
    if (connect(fd, (struct sockaddr *)&host, sizeof host) != 0) {
        printf("VMMSHARP-VSOCK-FAIL connect to port %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    char line[512];
    int n = snprintf(line, sizeof line, "%s\n", argv[2]);
    if (write(fd, line, (size_t)n) != n) {
        printf("VMMSHARP-VSOCK-FAIL write: %s\n", strerror(errno));
        return 1;
    }
    size_t got = 0;
    while (got < sizeof line - 1) {
        ssize_t r = read(fd, line + got, 1);
        if (r <= 0 || line[got] == '\n')
            break;
        got++;
    }
    line[got] = 0;
    printf("VMMSHARP-VSOCK-OK %s\n", line);
    close(fd);
    return 0;
}
