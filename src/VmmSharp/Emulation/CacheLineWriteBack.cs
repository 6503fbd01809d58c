using Iced.Intel;

namespace VmmSharp.Emulation;

/// <summary>
/// <c>clwb m8</c> and <c>clflushopt m8</c>: the address is checked as a read would be (segment, canonical form, page walk:
/// #GP, #SS or #PF as the hardware raises them), then nothing: guest RAM is ordinary host memory, kept coherent by the host.
/// </summary>
internal static class CacheLineWriteBack
{
    public static void Execute(EmulationContext context, in Instruction instruction)
    {
        if (!context.TryLinearAddress(instruction, 1, out ulong linear) || !context.TryTranslate(linear, context.DataAccess(write: false), out _))
        {
            return;
        }
        context.Advance(instruction);
    }
}
