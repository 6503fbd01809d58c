namespace VmmSharp.Devices;

/// <summary>Helpers over <see cref="IIrqLine"/>.</summary>
public static class IrqLineExtensions
{
    /// <summary>
    /// Raises then lowers the line: one edge, as an edge-triggered ISA interrupt (the i8042's IRQ 1, say) expects.
    /// </summary>
    /// <param name="line">The line to pulse.</param>
    public static void Pulse(this IIrqLine line)
    {
        ArgumentNullException.ThrowIfNull(line);
        line.Set(true);
        line.Set(false);
    }
}
