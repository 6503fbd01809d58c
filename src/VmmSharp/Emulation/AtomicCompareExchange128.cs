using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using Iced.Intel;
using VmmSharp.Interop;
using static Iced.Intel.AssemblerRegisters;

namespace VmmSharp.Emulation;

/// <summary>
/// A 16-byte compare-and-exchange on host memory that is atomic against every other CPU: the host's own
/// <c>lock cmpxchg16b</c>, in a dozen bytes of code assembled here at run time with Iced into a page that is
/// made executable once it is written (never writable and executable at once).
/// </summary>
/// <remarks>
/// .NET has no 128-bit CAS, and two 64-bit CASes are not one 128-bit one: a vCPU could see half of another's
/// update. The guest's RAM is host memory mapped into this process, so the host instruction on the host address is
/// exactly the guest's atomic. The code is generated, not shipped: no native binary enters the build.
/// </remarks>
internal static unsafe class AtomicCompareExchange128
{
    private static readonly Lazy<nint> Code = new(Emit);

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
        var function = (delegate* unmanaged<void*, UInt128*, UInt128*, int>)Code.Value;
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
        var a = new Assembler(64);
        a.push(rbx);
        a.mov(r8, rdx);
        a.mov(rax, __qword_ptr[rsi]);
        a.mov(rdx, __qword_ptr[rsi + 8]);
        a.mov(rbx, __qword_ptr[r8]);
        a.mov(rcx, __qword_ptr[r8 + 8]);
        a.@lock.cmpxchg16b(__xmmword_ptr[rdi]);
        a.mov(__qword_ptr[rsi], rax);
        a.mov(__qword_ptr[rsi + 8], rdx);
        a.setz(al);
        a.movzx(eax, al);
        a.pop(rbx);
        a.ret();
        using var stream = new MemoryStream();
        a.Assemble(new StreamCodeWriter(stream), 0);
        byte[] code = stream.ToArray();

        const nuint pageSize = 4096;
        nint page = Libc.Mmap(0, pageSize, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_PRIVATE | Libc.MAP_ANONYMOUS, -1, 0);
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
