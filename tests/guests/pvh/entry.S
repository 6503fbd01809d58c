/* PVH entry: 32-bit protected mode, paging off, EBX = struct hvm_start_info. */
    .text
    .globl pvh_start
pvh_start:
    cli
    cld
    mov %ebx, %ebp
    mov $__bss_start, %edi
    mov $__bss_end, %ecx
    sub %edi, %ecx
    xor %eax, %eax
    rep stosb
    mov $stack_top, %esp
    push %ebp
    call pvh_main
1:  cli
    hlt
    jmp 1b
    .section .note.GNU-stack, "", @progbits
