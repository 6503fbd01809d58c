/* The small kernel's /init: says it ran, then powers off. Freestanding (no libc), so the initramfs is one page of
 * code instead of a 2 MB busybox: where guest kernel code is emulated, unpacking that costs minutes.
 * Built by scripts/linux-tiny.sh with gcc -static -nostdlib. */
#define SYS_write 1
#define SYS_reboot 169
#define LINUX_REBOOT_MAGIC1 0xfee1dead
#define LINUX_REBOOT_MAGIC2 672274793
#define LINUX_REBOOT_CMD_POWER_OFF 0x4321fedc

static long syscall4(long n, long a, long b, long c, long d)
{
    long ret;
    register long r10 __asm__("r10") = d;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10) : "rcx", "r11", "memory");
    return ret;
}

void _start(void)
{
    static const char marker[] = "VMMSHARP-INIT-OK\n";
    syscall4(SYS_write, 1, (long)marker, sizeof marker - 1, 0);
    /* Without ACPI the kernel cannot power off: reboot() then returns, /init exits and the kernel's panic reboots. */
    syscall4(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, LINUX_REBOOT_CMD_POWER_OFF, 0);
    for (;;)
        syscall4(60 /* exit */, 0, 0, 0, 0);
}
