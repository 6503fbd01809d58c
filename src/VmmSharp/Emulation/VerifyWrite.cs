using System.Buffers.Binary;
using Iced.Intel;

namespace VmmSharp.Emulation;

/// <summary>
/// <c>verw r/m16</c>: sets ZF if the selector names, in the GDT or LDT, a data segment that is writable at the current
/// privilege (DPL ≥ max(CPL, RPL)); clears it otherwise. #UD outside protected mode. The CPU-buffer flush that
/// guests use <c>verw</c> for is the host's business: the VMM's own exit path has already left the guest.
/// </summary>
internal static class VerifyWrite
{
    public static void Execute(EmulationContext context, in Instruction instruction)
    {
        if (!context.ProtectedMode || (context.State.Rflags & (1UL << 17)) != 0)
        {
            context.Raise(EmulationContext.UD);
            return;
        }
        ushort selector;
        if (instruction.Op0Kind == OpKind.Register)
        {
            selector = (ushort)context.ReadGpr(instruction.Op0Register);
        }
        else
        {
            Span<byte> operand = stackalloc byte[2];
            if (!context.TryLinearAddress(instruction, 2, out ulong linear) || !context.TryRead(linear, operand, context.DataAccess(write: false)))
            {
                return;
            }
            selector = BinaryPrimitives.ReadUInt16LittleEndian(operand);
        }
        if (!TryWritable(context, selector, out bool writable))
        {
            return;
        }
        context.SetZeroFlag(writable);
        context.Advance(instruction);
    }

    private static bool TryWritable(EmulationContext context, ushort selector, out bool writable)
    {
        writable = false;
        if ((selector & 0xfffc) == 0)
        {
            return true;
        }
        ulong tableBase, limit;
        if ((selector & 4) != 0)
        {
            var ldtr = context.State.Ldtr;
            if (ldtr.Unusable != 0 || (ldtr.Selector & 0xfffc) == 0)
            {
                return true;
            }
            (tableBase, limit) = (ldtr.Base, ldtr.Limit);
        }
        else
        {
            var gdtr = context.State.Gdtr;
            (tableBase, limit) = (gdtr.Base, gdtr.Limit);
        }
        ulong index = (ulong)(selector & 0xfff8);
        if (index + 7 > limit)
        {
            return true;
        }
        Span<byte> raw = stackalloc byte[8];
        // The descriptor read is an implicit supervisor access.
        if (!context.TryRead(context.Bitness == 64 ? tableBase + index : (tableBase + index) & 0xffff_ffff, raw, AccessKind.Read))
        {
            return false;
        }
        ulong descriptor = BinaryPrimitives.ReadUInt64LittleEndian(raw);
        uint type = (uint)(descriptor >> 40) & 0xf;
        bool codeOrData = (descriptor & (1UL << 44)) != 0;
        int dpl = (int)(descriptor >> 45) & 3;
        int rpl = selector & 3;
        writable = codeOrData && (type & 8) == 0 && (type & 2) != 0 && dpl >= Math.Max(context.Cpl, rpl);
        return true;
    }
}
