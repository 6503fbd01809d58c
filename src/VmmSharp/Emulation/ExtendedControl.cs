using Iced.Intel;

namespace VmmSharp.Emulation;

/// <summary><c>xgetbv</c>: EDX:EAX = XCR0 (KVM_GET_XCRS) for ECX = 0; #GP(0) for any other ECX; #UD without CR4.OSXSAVE.</summary>
internal static class ExtendedControl
{
    public static void Execute(EmulationContext context, in Instruction instruction)
    {
        if (!context.OsXsave)
        {
            context.Raise(EmulationContext.UD);
            return;
        }
        if ((uint)context.State.Rcx != 0)
        {
            context.Raise(EmulationContext.GP, 0); // XCR1 (XINUSE) is not offered: CPUID.(0xD,1):EAX.XG1 is clear here
            return;
        }
        ulong xcr0 = context.Xcr0();
        context.SetGpr32(0, (uint)xcr0);
        context.SetGpr32(2, (uint)(xcr0 >> 32));
        context.Advance(instruction);
    }
}
