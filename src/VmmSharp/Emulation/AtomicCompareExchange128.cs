using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using Iced.Intel;
using VmmSharp.Interop;

namespace VmmSharp.Emulation;

/// <summary>
/// A 16-byte compare-and-exchange on host memory that is atomic against every other CPU: the host's own
/// <c>lock cmpxchg16b</c>, in a few dozen bytes of code encoded here at run time with Iced's encoder into a page that is
/// made executable once it is written (never writable and executable at once).
/// </summary>
/// <remarks>
/// .NET has no 128-bit CAS, and two 64-bit CASes are not one 128-bit one: a vCPU could see half of another's
/// update. The guest's RAM is host memory mapped into this process, so the host instruction on the host address is
/// exactly the guest's atomic. The code is generated, not shipped: no native binary enters the build.
/// </remarks>
internal static unsafe class AtomicCompareExchange128
{
    private static readonly Lazy<nint> Function = new(Emit);

    /// <summary>Whether the host CPU has <c>cmpxchg16b</c> (CPUID.1:ECX.CX16).</summary>
    public static bool IsSupported => X86Base.IsSupported && (X86Base.CpuId(1, 0).Ecx & (1 << 13)) != 0;

    /// <summary>
    /// Compares the 16 bytes at <paramref name="address"/> (16-byte aligned) with <paramref name="expected"/> and, if equal,
    /// stores <paramref name="desired"/>; otherwise <paramref name="expected"/> receives the value found. Returns whether it stored.
    /// </summary>
    public static bool Exchange(void* address, ref UInt128 expected, UInt128 desired)
    {
        if (((nint)address & 15) != 0)
        {
            throw new ArgumentException("cmpxchg16b needs a 16-byte aligned address", nameof(address));
        }
        var function = (delegate* unmanaged<void*, UInt128*, UInt128*, int>)Function.Value;
        fixed (UInt128* e = &expected)
        {
            return function(address, e, &desired) != 0;
        }
    }

    private static nint Emit()
    {
        if (!IsSupported)
        {
            throw new PlatformNotSupportedException("the host CPU has no cmpxchg16b");
        }
        // int f(void* address /*rdi*/, UInt128* expected /*rsi*/, UInt128* desired /*rdx*/), System V ABI.
        var cmpxchg = Instruction.Create(Code.Cmpxchg16b_m128, new MemoryOperand(Register.RDI));
        cmpxchg.HasLockPrefix = true;
        Instruction[] body =
        [
            Instruction.Create(Code.Push_r64, Register.RBX),
            Instruction.Create(Code.Mov_r64_rm64, Register.R8, Register.RDX),
            Instruction.Create(Code.Mov_r64_rm64, Register.RAX, new MemoryOperand(Register.RSI)),
            Instruction.Create(Code.Mov_r64_rm64, Register.RDX, new MemoryOperand(Register.RSI, 8, 1)),
            Instruction.Create(Code.Mov_r64_rm64, Register.RBX, new MemoryOperand(Register.R8)),
            Instruction.Create(Code.Mov_r64_rm64, Register.RCX, new MemoryOperand(Register.R8, 8, 1)),
            cmpxchg,
            Instruction.Create(Code.Mov_rm64_r64, new MemoryOperand(Register.RSI), Register.RAX),
            Instruction.Create(Code.Mov_rm64_r64, new MemoryOperand(Register.RSI, 8, 1), Register.RDX),
            Instruction.Create(Code.Sete_rm8, Register.AL),
            Instruction.Create(Code.Movzx_r32_rm8, Register.EAX, Register.AL),
            Instruction.Create(Code.Pop_r64, Register.RBX),
            Instruction.Create(Code.Retnq),
        ];
        var writer = new CodeBuffer();
        Encoder encoder = Encoder.Create(64, writer);
        ulong ip = 0;
        foreach (Instruction instruction in body)
        {
            ip += (ulong)encoder.Encode(instruction, ip);
        }
        byte[] code = writer.ToArray();

        const nuint pageSize = 4096;
        nint page = Libc.MmapAnonymous(0, pageSize, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_PRIVATE | Libc.MAP_ANONYMOUS, -1, 0);
        if (page == Libc.MAP_FAILED)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new VmmException($"mmap of a page for the cmpxchg16b helper failed: {Libc.ErrorText(errno)} (errno {errno})");
        }
        code.CopyTo(new Span<byte>((void*)page, code.Length));
        if (Libc.Mprotect(page, pageSize, Libc.PROT_READ | Libc.PROT_EXEC) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            Libc.Munmap(page, pageSize);
            throw new VmmException($"mprotect of the cmpxchg16b helper to executable failed: {Libc.ErrorText(errno)} (errno {errno})");
        }
        return page; // kept for the life of the process
    }
}

/// <summary>Collects the encoder's bytes.</summary>
file sealed class CodeBuffer : CodeWriter
{
    private readonly List<byte> _bytes = [];

    public override void WriteByte(byte value) => _bytes.Add(value);

    public byte[] ToArray() => [.. _bytes];
}
