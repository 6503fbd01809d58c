namespace VmmSharp.Devices.Consoles;

/// <summary>
/// The guest's end of a console, as an <see cref="IConsoleInput"/> sees it. The machine implements it for the length
/// of one run; once the run is over it takes nothing more and does nothing, so a late input thread cannot reach a
/// machine that is gone.
/// </summary>
/// <remarks>Threading: any thread may call it, typically the input source's reader thread.</remarks>
public interface IConsoleReceiver
{
    /// <summary>Offers bytes typed by the user to the guest.</summary>
    /// <param name="input">The bytes.</param>
    /// <returns>
    /// How many the guest's device took (its FIFO may be full: offer the rest again later). After the run has ended all
    /// of them, which are discarded.
    /// </returns>
    int Offer(ReadOnlySpan<byte> input);

    /// <summary>Asks the machine to end the run (the user typed the quit key); nothing once the run has ended.</summary>
    /// <param name="reason">What the run's result says, e.g. "stopped by the user (Ctrl-A x)".</param>
    void RequestStop(string reason);
}
