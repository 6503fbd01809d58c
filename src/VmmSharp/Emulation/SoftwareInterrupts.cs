using Iced.Intel;

namespace VmmSharp.Emulation;

/// <summary>
/// <c>int3</c>, <c>int n</c>, <c>into</c> and <c>int1</c>: RIP moves past the instruction (the return address the
/// guest's handler sees) and KVM delivers the event through the guest's IDT on entry (KVM_SET_VCPU_EVENTS, here
/// through the sync-regs area), so a missing gate, an unmapped handler or a bad stack fault as the hardware would.
/// </summary>
/// <remarks>
/// On this host (PVM) an injected software exception or interrupt pushes RIP as it stands, measured; KVM on VMX or SVM
/// adds the instruction length itself for soft events, but there these instructions never reach the fallback at CPL0.
/// </remarks>
internal static class SoftwareInterrupts
{
    private const byte DebugVector = 1, BreakpointVector = 3, OverflowVector = 4;

    public static void Execute(EmulationContext context, in Instruction instruction)
    {
        byte vector = instruction.Mnemonic switch
        {
            Mnemonic.Int3 => BreakpointVector,
            Mnemonic.Int1 => DebugVector,
            Mnemonic.Into => OverflowVector,
            _ => instruction.Immediate8,
        };
        if (instruction.Mnemonic == Mnemonic.Into && (context.State.Rflags & 0x800) == 0)
        {
            context.Advance(instruction);
            return;
        }
        // The gate checks come first: a fault there is the instruction's own, reported at the instruction.
        if (context.ProtectedMode && !GateUsable(context, vector, software: instruction.Mnemonic != Mnemonic.Int1))
        {
            return;
        }
        context.Advance(instruction);
        switch (instruction.Mnemonic)
        {
            case Mnemonic.Int3:
                context.State.InjectException(BreakpointVector);
                break;
            case Mnemonic.Int1:
                context.State.InjectException(DebugVector);
                break;
            case Mnemonic.Into:
                context.State.InjectException(OverflowVector);
                break;
            default:
                context.State.InjectSoftwareInterrupt(vector);
                break;
        }
    }

    /// <summary>
    /// The checks the CPU makes on the IDT gate before it delivers a software interrupt: within the IDT's limit
    /// (#GP), an interrupt or trap gate (#GP), DPL ≥ CPL for INT n/INT3/INTO (#GP), present (#NP); each error code
    /// names the gate (vector × 8 + 2, the IDT bit).
    /// </summary>
    private static bool GateUsable(EmulationContext context, byte vector, bool software)
    {
        bool long64 = context.Bitness == 64 || (context.State.Efer & (1UL << 10)) != 0;
        int size = long64 ? 16 : 8;
        uint error = ((uint)vector << 3) | 2;
        var idtr = context.State.Idtr;
        if (((ulong)vector * (ulong)size) + (ulong)size - 1 > idtr.Limit)
        {
            return context.Raise(EmulationContext.GP, error);
        }
        Span<byte> gate = stackalloc byte[8];
        ulong linear = idtr.Base + ((ulong)vector * (ulong)size);
        if (!context.TryRead(long64 ? linear : linear & 0xffff_ffff, gate, AccessKind.Read))
        {
            return false;
        }
        int type = gate[5] & 0xf, dpl = (gate[5] >> 5) & 3;
        bool present = (gate[5] & 0x80) != 0;
        bool validType = long64 ? type is 0xe or 0xf : type is 0x5 or 0x6 or 0x7 or 0xe or 0xf;
        if (!validType || (software && dpl < context.Cpl))
        {
            return context.Raise(EmulationContext.GP, error);
        }
        return present || context.Raise(EmulationContext.NP, error);
    }
}
