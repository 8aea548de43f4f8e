// The real node's small images, one static binary: `pause` holds a pod's namespaces (the
// sandbox image; nothing can be pulled here, so not registry.k8s.io/pause) and `serve`
// is an HTTP server for the test apps whose pods must really become Ready.
//
//	testimage pause
//	testimage serve [ADDR]   ADDR defaults to :$PORT or :8080; GET / answers 200 "ok <hostname>"
package main

import (
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	mode := "serve"
	if len(os.Args) > 1 {
		mode = os.Args[1]
	}
	switch mode {
	case "pause":
		pause()
	case "serve":
		addr := ":8080"
		if p := os.Getenv("PORT"); p != "" {
			addr = ":" + p
		}
		if len(os.Args) > 2 {
			addr = os.Args[2]
		}
		serve(addr)
	default:
		fmt.Fprintf(os.Stderr, "usage: %s pause|serve [ADDR]\n", os.Args[0])
		os.Exit(2)
	}
}

// pause waits for SIGINT or SIGTERM and reaps the zombies it inherits as the pod's PID 1.
func pause() {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range sigs {
		if s == syscall.SIGCHLD {
			for {
				pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
				if pid <= 0 || err != nil {
					break
				}
			}
			continue
		}
		os.Exit(0)
	}
}

func serve(addr string) {
	host, _ := os.Hostname()
	http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "ok %s\n", host)
	})
	srv := &http.Server{Addr: addr}
	go func() {
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
		<-sigs
		srv.Close()
	}()
	fmt.Printf("listening on %s\n", addr)
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
