using System.Buffers.Binary;
using Iced.Intel;

namespace VmmSharp.Emulation;

/// <summary>
/// <c>ldmxcsr m32</c> and <c>stmxcsr m32</c> (and their VEX forms) on the MXCSR of the XSAVE state (KVM_GET_XSAVE/KVM_SET_XSAVE: this host's KVM_GET_FPU/KVM_SET_FPU drop MXCSR, measured); #GP(0) for a
/// value with reserved bits set (those outside the CPU's MXCSR_MASK), #UD without CR4.OSFXSR or with CR0.EM, #NM with CR0.TS.
/// </summary>
internal static class MxcsrAccess
{
    public static void Execute(EmulationContext context, in Instruction instruction, uint mxcsrMask)
    {
        bool vex = instruction.Mnemonic is Mnemonic.Vldmxcsr or Mnemonic.Vstmxcsr;
        if (!context.CheckSse(vex) || !context.TryLinearAddress(instruction, 4, out ulong linear))
        {
            return;
        }
        Span<byte> value = stackalloc byte[4];
        if (instruction.Mnemonic is Mnemonic.Ldmxcsr or Mnemonic.Vldmxcsr)
        {
            if (!context.TryRead(linear, value, context.DataAccess(write: false)))
            {
                return;
            }
            uint mxcsr = BinaryPrimitives.ReadUInt32LittleEndian(value);
            if ((mxcsr & ~mxcsrMask) != 0)
            {
                context.Raise(EmulationContext.GP, 0);
                return;
            }
            Span<byte> state = context.Xsave();
            BinaryPrimitives.WriteUInt32LittleEndian(state[24..], mxcsr);
            state[XsaveLayout.Header] |= 2; // KVM_SET_XSAVE loads MXCSR with the SSE component
            context.XsaveChanged();
        }
        else
        {
            context.Xsave()[24..28].CopyTo(value);
            if (!context.TryWrite(linear, value, context.DataAccess(write: true)))
            {
                return;
            }
        }
        context.Advance(instruction);
    }
}
