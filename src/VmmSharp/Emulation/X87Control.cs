using Iced.Intel;

namespace VmmSharp.Emulation;

/// <summary>
/// <c>fwait</c>, <c>fnclex</c> and <c>emms</c>, as the x87 state (KVM_GET_FPU, fetched only for these) says: a pending
/// unmasked x87 exception (FSW.ES) makes <c>fwait</c> and <c>emms</c> raise #MF with CR0.NE, or signal FERR# without it;
/// <c>fnclex</c> clears the exception flags; <c>emms</c> empties the tag word. #NM and #UD as CR0.TS/MP/EM say.
/// </summary>
internal static class X87Control
{
    private const ushort ErrorSummary = 0x80;

    public static void Execute(EmulationContext context, in Instruction instruction, Action? floatingPointError)
    {
        switch (instruction.Mnemonic)
        {
            case Mnemonic.Wait:
                if (!context.CheckWait() || !NoPendingError(context, floatingPointError))
                {
                    return;
                }
                break;
            case Mnemonic.Fnclex:
                if (!context.CheckX87())
                {
                    return;
                }
                context.Fpu().Fsw &= 0x7f00; // exception flags, ES and B cleared
                context.FpuChanged();
                break;
            default: // emms
                if ((context.Cr0 & 4) != 0)
                {
                    context.Raise(EmulationContext.UD);
                    return;
                }
                if (!context.CheckX87() || !NoPendingError(context, floatingPointError))
                {
                    return;
                }
                context.Fpu().Ftwx = 0; // abridged tag word: all registers empty
                context.FpuChanged();
                break;
        }
        context.Advance(instruction);
    }

    /// <summary>Raises #MF (CR0.NE) for a pending x87 error and returns false; without NE signals FERR# and goes on.</summary>
    private static bool NoPendingError(EmulationContext context, Action? floatingPointError)
    {
        ref var fpu = ref context.Fpu();
        bool pending = (fpu.Fsw & ErrorSummary) != 0 || (fpu.Fsw & ~fpu.Fcw & 0x3f) != 0;
        if (!pending)
        {
            return true;
        }
        if (context.NativeFpuErrors)
        {
            return context.Raise(EmulationContext.MF);
        }
        floatingPointError?.Invoke();
        return true;
    }
}
