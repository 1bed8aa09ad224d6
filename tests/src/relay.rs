//! A TCP relay on loopback that a test can cut: the network between an edge node and its
//! gateway. Cutting drops every connection through it and refuses new ones until restored.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// A relay from a loopback port to `target`.
pub struct Relay {
    addr: SocketAddr,
    /// Cancelled to cut; replaced by a fresh token on restore. `None` while cut.
    link: Arc<Mutex<Option<CancellationToken>>>,
    stop: CancellationToken,
}

impl Relay {
    /// Starts relaying to `target`.
    pub async fn start(target: SocketAddr) -> std::io::Result<Relay> {
        let listener = TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let link = Arc::new(Mutex::new(Some(CancellationToken::new())));
        let stop = CancellationToken::new();
        tokio::spawn(accept(listener, target, link.clone(), stop.clone()));
        Ok(Relay { addr, link, stop })
    }

    /// Where to connect instead of `target`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Drops every connection and refuses new ones.
    pub fn cut(&self) {
        if let Some(token) = self.link.lock().expect("relay lock").take() {
            token.cancel();
        }
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        let mut link = self.link.lock().expect("relay lock");
        if link.is_none() {
            *link = Some(CancellationToken::new());
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.cancel();
        self.cut();
    }
}

async fn accept(
    listener: TcpListener,
    target: SocketAddr,
    link: Arc<Mutex<Option<CancellationToken>>>,
    stop: CancellationToken,
) {
    loop {
        let inbound = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((inbound, _)) => inbound,
                Err(_) => continue,
            },
        };
        let Some(token) = link.lock().expect("relay lock").clone() else {
            continue;
        };
        tokio::spawn(pipe(inbound, target, token));
    }
}

async fn pipe(mut inbound: TcpStream, target: SocketAddr, cut: CancellationToken) {
    let Ok(mut outbound) = TcpStream::connect(target).await else {
        return;
    };
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    tokio::select! {
        () = cut.cancelled() => {}
        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
    }
}
