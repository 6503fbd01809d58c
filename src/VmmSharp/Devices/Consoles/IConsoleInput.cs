namespace VmmSharp.Devices.Consoles;

/// <summary>
/// A source of bytes for a guest console: a terminal, a pipe, a socket. The machine starts it when a run begins and
/// stops it when the run ends; one source may serve several runs in turn (every boot of a rebooting guest).
/// </summary>
/// <remarks>
/// An implementation delivers on a thread of its own (never a vCPU's) and keeps any waiting for input or for the
/// guest there. Offers that the receiver does not take are offered again later: the guest's FIFO is small.
/// </remarks>
public interface IConsoleInput
{
    /// <summary>Starts delivering input to <paramref name="receiver"/> until the returned session is disposed.</summary>
    /// <param name="receiver">The guest's end; valid until the session is disposed, inert after that.</param>
    /// <returns>The session; disposing it stops delivery (it need not wait for a delivery in progress).</returns>
    IDisposable Start(IConsoleReceiver receiver);
}
