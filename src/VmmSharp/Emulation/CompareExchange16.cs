using System.Runtime.InteropServices;
using Iced.Intel;

namespace VmmSharp.Emulation;

/// <summary>
/// <c>cmpxchg16b m128</c>: compares RDX:RAX with the 16 bytes at the operand; if equal, stores RCX:RBX and sets ZF,
/// else loads the value into RDX:RAX and clears ZF. A misaligned operand raises #GP(0). On RAM it is the host's
/// locked instruction (<see cref="AtomicCompareExchange128"/>), so it is atomic with respect to the other vCPUs.
/// </summary>
internal static unsafe class CompareExchange16
{
    public static void Execute(EmulationContext context, in Instruction instruction)
    {
        if (!context.TryLinearAddress(instruction, 16, out ulong linear))
        {
            return;
        }
        if ((linear & 15) != 0)
        {
            context.Raise(EmulationContext.GP, 0);
            return;
        }
        // A locked read-modify-write needs write access even when the comparison fails.
        if (!context.TryTranslate(linear, context.DataAccess(write: true), out ulong physical))
        {
            return;
        }
        var expected = new UInt128(context.State.Rdx, context.State.Rax);
        var desired = new UInt128(context.State.Rcx, context.State.Rbx);
        bool stored;
        if (context.Space.TryGetRam(physical, 16, write: true, out Span<byte> ram))
        {
            fixed (byte* p = ram)
            {
                stored = AtomicCompareExchange128.Exchange(p, ref expected, desired);
            }
        }
        else
        {
            // MMIO has no atomics to offer: read, compare, write back (the old value on failure, as the locked cycle does).
            Span<byte> value = stackalloc byte[16];
            context.Space.MmioRead(physical, value[..8]);
            context.Space.MmioRead(physical + 8, value[8..]);
            UInt128 found = MemoryMarshal.Read<UInt128>(value);
            stored = found == expected;
            MemoryMarshal.Write(value, stored ? desired : found);
            context.Space.MmioWrite(physical, value[..8]);
            context.Space.MmioWrite(physical + 8, value[8..]);
            expected = found;
        }
        if (!stored)
        {
            context.State.Rax = (ulong)expected;
            context.State.Rdx = (ulong)(expected >> 64);
        }
        context.SetZeroFlag(stored);
        context.Advance(instruction);
    }
}
