/* Startup-benchmark guest: the smallest PVH kernel. Writes "VMM-MARKER\n" to COM1
 * (one OUT per byte; no UART init and no LSR polling, to keep the exit count at 12)
 * and debug-exits with 0 at once (QEMU status 1). */
    .text
    .globl pvh_start
pvh_start:
    mov $0x3f8, %dx
    mov $msg, %esi
1:  lodsb
    outb %al, %dx
    cmp $'\n', %al
    jne 1b
    xor %eax, %eax
    outb %al, $0xf4
2:  cli
    hlt
    jmp 2b
msg:
    .ascii "VMM-MARKER\n"
    .section .note.GNU-stack, "", @progbits
