/* XEN_ELFNOTE_PHYS32_ENTRY (type 18) in an ELF64 image: the 32-bit physical entry, as a 64-bit value (as Linux's). */
    .section .note.Xen, "a", @note
    .balign 4
    .long 4
    .long 8
    .long 18
    .asciz "Xen"
    .balign 4
    .quad pvh_start
    .section .note.GNU-stack, "", @progbits
