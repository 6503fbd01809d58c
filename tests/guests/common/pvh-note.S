/* XEN_ELFNOTE_PHYS32_ENTRY (type 18): the 32-bit physical entry point for PVH boot. */
    .section .note.Xen, "a", @note
    .balign 4
    .long 4          /* namesz: "Xen\0" */
    .long 4          /* descsz: 32-bit entry address (ELF32) */
    .long 18         /* type: XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .balign 4
    .long pvh_start
    .balign 4
    .section .note.GNU-stack, "", @progbits
