/* Real-mode AP trampoline. The BSP copies [ap_tramp_start, ap_tramp_end) to a page
 * below 1 MiB and sends INIT/SIPI with that page's number as the vector, so the AP
 * starts here with CS = page << 8, IP = 0. It bumps the counter that sits inside the
 * copied page and halts forever: three instructions, because at CPL0 under PVM every
 * instruction is emulated. */
    .section .rodata.ap_tramp, "a"
    .code16
    .globl ap_tramp_start, ap_tramp_end, ap_tramp_counter
ap_tramp_start:
    cli
    lock incl %cs:(ap_tramp_counter - ap_tramp_start)
1:  hlt
    jmp 1b
    .balign 4
ap_tramp_counter:
    .long 0
ap_tramp_end:
    .code32
    .section .note.GNU-stack, "", @progbits
