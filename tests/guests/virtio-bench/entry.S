/* virtio-bench entry: PVH (32-bit protected mode, paging off, EBX = hvm_start_info). Switches to long mode with
 * the first 4 GiB identity-mapped by 2 MiB user pages (static tables: no CPL0 loop), then drops to CPL3 with
 * IOPL 3 and IF 0, where the benchmark runs natively even on PVM (whose CPL0 is emulated). */
    .code32
    .section .text.entry, "ax"
    .globl pvh_start
pvh_start:
    cli
    mov %ebx, %esi
    mov $stack_top, %esp        /* PVH gives no stack; the iretq frame below uses it once */
    mov $tss, %eax              /* the TSS descriptor's base, which the linker cannot split */
    mov %ax, gdt_tss + 2
    shr $16, %eax
    mov %al, gdt_tss + 4
    mov %ah, gdt_tss + 7
    lgdt gdt_desc
    mov $pml4, %eax
    mov %eax, %cr3
    mov $0x620, %eax            /* CR4: PAE, OSFXSR, OSXMMEXCPT */
    mov %eax, %cr4
    mov $0xc0000080, %ecx       /* EFER.LME */
    rdmsr
    or $0x100, %eax
    wrmsr
    mov $0x80000033, %eax       /* CR0: PG, NE, ET, MP, PE */
    mov %eax, %cr0
    ljmp $0x08, $long_entry

    .code64
long_entry:
    mov $0x10, %eax
    mov %eax, %ss
    mov $0x28, %eax
    ltr %ax
    pushq $0x1b                 /* SS: user data */
    pushq $stack_top            /* RSP */
    pushq $0x3002               /* RFLAGS: IOPL 3, IF 0 (PVM drops the IOPL here: the TSS's I/O bitmap allows every port) */
    pushq $0x23                 /* CS: user code, 64-bit */
    pushq $user_entry
    mov %esi, %edi              /* first argument: the start_info's physical address */
    iretq
user_entry:
    call bench_main
1:  jmp 1b

    .section .data.tables, "aw"
    .balign 8
gdt:
    .quad 0
    .quad 0x00af9b000000ffff    /* 0x08 kernel code, 64-bit */
    .quad 0x00cf93000000ffff    /* 0x10 kernel data */
    .quad 0x00cff3000000ffff    /* 0x18 user data (selector 0x1b) */
    .quad 0x00affb000000ffff    /* 0x20 user code, 64-bit (selector 0x23) */
gdt_tss:                        /* 0x28 64-bit TSS, limit: header + I/O bitmap + terminator */
    .quad 0x0000890000000000 + (tss_end - tss - 1)
    .quad 0
gdt_end:
gdt_desc:
    .word gdt_end - gdt - 1
    .long gdt

    .balign 4096
pml4:
    .quad pdpt + 0x7            /* present, writable, user */
    .fill 511, 8, 0
pdpt:
    .quad pd + 0x7
    .quad pd + 0x1000 + 0x7
    .quad pd + 0x2000 + 0x7
    .quad pd + 0x3000 + 0x7
    .fill 508, 8, 0
pd:                             /* 2048 x 2 MiB: present, writable, user, large */
    .set page, 0
    .rept 2048
    .quad (page << 21) + 0x87
    .set page, page + 1
    .endr

    .balign 16
tss:
    .long 0
    .quad stack_top             /* RSP0 */
    .fill 0x66 - 12, 1, 0
    .word 0x68                  /* I/O map base */
    .fill 8192, 1, 0            /* every port allowed */
    .byte 0xff
tss_end:

    .section .note.GNU-stack, "", @progbits
