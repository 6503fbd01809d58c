using VmmSharp.Devices.Consoles;

namespace VmmSharp.Machine;

/// <content>The guest console's end of the console input (COM1 or the virtio-console port), valid for one run.</content>
public sealed partial class PcMachine
{
    /// <summary>
    /// What <see cref="IConsoleInput"/> talks to during a run: it feeds the guest console and can stop the run. Closed when the run
    /// ends, under the same lock as every call, so no call can reach the machine after that.
    /// </summary>
    private sealed class ConsoleReceiver(PcMachine machine) : IConsoleReceiver
    {
        private readonly Lock _lock = new();
        private bool _closed;

        public int Offer(ReadOnlySpan<byte> input)
        {
            lock (_lock)
            {
                // The guest's console takes the input: the virtio-console port when there is one, else COM1.
                return _closed ? input.Length
                    : machine.VirtioConsole is { } console ? console.EnqueueInput(input) : machine.Serial.EnqueueInput(input);
            }
        }

        public void RequestStop(string reason)
        {
            lock (_lock)
            {
                if (!_closed)
                {
                    machine.RequestStop(0, reason);
                }
            }
        }

        public void Close()
        {
            lock (_lock)
            {
                _closed = true;
            }
        }
    }
}
