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
                if ((context.State.Rflags & 0x800) != 0)
                {
                    context.State.InjectException(OverflowVector);
                }
                break;
            default:
                context.State.InjectSoftwareInterrupt(instruction.Immediate8);
                break;
        }
    }
}
